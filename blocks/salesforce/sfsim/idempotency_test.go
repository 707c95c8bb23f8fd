package sfsim

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// describeField is the part of a describe "fields" entry these tests read.
type describeField struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Length        int    `json:"length"`
	Nillable      bool   `json:"nillable"`
	Createable    bool   `json:"createable"`
	Updateable    bool   `json:"updateable"`
	Unique        bool   `json:"unique"`
	ExternalID    bool   `json:"externalId"`
	IDLookup      bool   `json:"idLookup"`
	CaseSensitive bool   `json:"caseSensitive"`
	Filterable    bool   `json:"filterable"`
	Sortable      bool   `json:"sortable"`
	Groupable     bool   `json:"groupable"`
}

func describeFields(t *testing.T, s *Server, tok, object string) map[string]describeField {
	t.Helper()
	var desc struct {
		Fields []describeField `json:"fields"`
	}
	r := call(t, http.MethodGet, dataURL(s, "sobjects/"+object+"/describe"), tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("describe %s: %d %s", object, r.status, r.body)
	}
	r.json(t, &desc)
	out := map[string]describeField{}
	for _, f := range desc.Fields {
		out[f.Name] = f
	}
	return out
}

func TestDescribeIdempotencyAndFilterability(t *testing.T) {
	s, tok := seeded(t, Options{})
	for _, object := range []string{"Account", "Contact", "Case", "Lead", "Task"} {
		t.Run(object, func(t *testing.T) {
			fields := describeFields(t, s, tok, object)
			want := describeField{
				Name: "SFBlocks_Job_Id__c", Type: "string", Length: 255, Nillable: true, Createable: true, Updateable: true,
				Unique: true, ExternalID: true, IDLookup: true, CaseSensitive: true, Filterable: true, Sortable: true, Groupable: true,
			}
			if got := fields["SFBlocks_Job_Id__c"]; got != want {
				t.Errorf("SFBlocks_Job_Id__c\n got %+v\nwant %+v", got, want)
			}
			if f := fields["External_Id__c"]; !f.Unique || f.CaseSensitive {
				t.Errorf("External_Id__c must stay unique and case-insensitive: %+v", f)
			}
			if f := fields["Description"]; f.Filterable || f.Sortable || f.Groupable {
				t.Errorf("long text Description: %+v", f)
			}
			for _, name := range []string{"CreatedById", "CreatedDate", "Id"} {
				if f := fields[name]; !f.Filterable {
					t.Errorf("%s not filterable", name)
				}
			}
		})
	}
}

func TestQueryRefusesNonFilterable(t *testing.T) {
	s, tok := seeded(t, Options{})
	tests := []struct {
		name     string
		soql     string
		wantCode string
		wantMsg  string
	}{
		{"where", "SELECT Id FROM Task WHERE Description = 'x'", "INVALID_FIELD",
			"\nSELECT Id FROM Task WHERE Description = 'x'\n                          ^\nERROR at Row:1:Column:27\nfield 'Description' can not be filtered in a query call"},
		{"order by", "SELECT Id FROM Case ORDER BY Description", "MALFORMED_QUERY",
			"\nSELECT Id FROM Case ORDER BY Description\n                             ^\nERROR at Row:1:Column:30\nfield 'Description' can not be sorted in a query call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, http.MethodGet, dataURL(s, "query?q="+url.QueryEscape(tt.soql)), tok, nil)
			var errs []apiError
			r.json(t, &errs)
			if r.status != http.StatusBadRequest || len(errs) != 1 || errs[0].Code != tt.wantCode || errs[0].Message != tt.wantMsg {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

// TestConcurrentJobIDUpsertsOverHTTP: upserts of one new job id racing over
// HTTP make one record; every answer is 201 created or 200 updated naming it.
func TestConcurrentJobIDUpsertsOverHTTP(t *testing.T) {
	s, tok := seeded(t, Options{})
	before := s.DB().Count("Task")
	const racers = 6
	var wg sync.WaitGroup
	results := make([]response, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = send(http.DefaultClient, http.MethodPatch, dataURL(s, "sobjects/Task/SFBlocks_Job_Id__c/job-42"), tok,
				`{"Subject":"Call from x","Status":"Completed"}`)
		})
	}
	close(start)
	wg.Wait()
	created, ids := 0, map[string]bool{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		var res upsertResult
		r.json(t, &res)
		switch {
		case r.status == http.StatusCreated && res.Created:
			created++
		case r.status == http.StatusOK && !res.Created:
		default:
			t.Fatalf("upsert answered %d %s", r.status, r.body)
		}
		ids[res.ID] = true
	}
	if created != 1 || len(ids) != 1 || s.DB().Count("Task") != before+1 {
		t.Fatalf("%d created, ids %v, %d new records", created, ids, s.DB().Count("Task")-before)
	}
	if st := s.Stats(); st.RecordsCreated != 1 || st.APICalls[KindUpsert] != racers {
		t.Fatalf("stats: created %d, upserts %d", st.RecordsCreated, st.APICalls[KindUpsert])
	}
}

// TestUpsertRace: with the fault on, an upsert that would update the record
// its job id names is answered DUPLICATE_VALUE, as a race loser can be on
// Salesforce, and still no second record appears.
func TestUpsertRace(t *testing.T) {
	s, tok := seeded(t, Options{})
	if err := s.Faults().SetUpsertRace(1); err != nil {
		t.Fatal(err)
	}
	u := dataURL(s, "sobjects/Task/SFBlocks_Job_Id__c/race-1")
	first := call(t, http.MethodPatch, u, tok, `{"Subject":"Call from x"}`)
	var created upsertResult
	first.json(t, &created)
	if first.status != http.StatusCreated {
		t.Fatalf("a create cannot lose a race: %d %s", first.status, first.body)
	}
	second := call(t, http.MethodPatch, u, tok, `{"Subject":"Call from x"}`)
	var errs []apiError
	second.json(t, &errs)
	want := apiError{Code: "DUPLICATE_VALUE", Message: "duplicate value found: SFBlocks_Job_Id__c duplicates value on record with id: " + created.ID, Fields: []string{}}
	if second.status != http.StatusBadRequest || len(errs) != 1 || errs[0].Code != want.Code || errs[0].Message != want.Message || errs[0].Fields == nil {
		t.Fatalf("race loser: %d %s", second.status, second.body)
	}
	// A plain create, a non-unique external ID and a fresh value are not races.
	if r := call(t, http.MethodPatch, dataURL(s, "sobjects/Contact/Legacy_Number__c/LEG-1"), tok, `{"LastName":"x"}`); r.status != http.StatusCreated {
		t.Fatalf("legacy create: %d %s", r.status, r.body)
	}
	if r := call(t, http.MethodPatch, dataURL(s, "sobjects/Contact/Legacy_Number__c/LEG-1"), tok, `{"LastName":"y"}`); r.status != http.StatusOK {
		t.Fatalf("non-unique update must not race: %d %s", r.status, r.body)
	}
	if err := s.Faults().SetUpsertRace(0); err != nil {
		t.Fatal(err)
	}
	if r := call(t, http.MethodPatch, u, tok, `{"Subject":"Call from x"}`); r.status != http.StatusOK {
		t.Fatalf("after the fault: %d %s", r.status, r.body)
	}
	if n := jobRecords(t, s, tok, "race-1"); n != 1 {
		t.Fatalf("%d records", n)
	}
	if st := s.Stats(); st.FaultsInjected["upsertRace"] != 1 {
		t.Fatalf("faults %v", st.FaultsInjected)
	}
	// Over /_sim/faults.
	r := call(t, http.MethodPut, s.LoginURL()+"/_sim/faults", "", `{"upsertRace":0.3}`)
	var cfg FaultConfig
	r.json(t, &cfg)
	if r.status != http.StatusOK || cfg.UpsertRace != 0.3 {
		t.Fatalf("PUT upsertRace: %d %s", r.status, r.body)
	}
	if r := call(t, http.MethodPut, s.LoginURL()+"/_sim/faults", "", `{"upsertRace":1.5}`); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "upsertRace 1.5 is outside [0,1]") {
		t.Fatalf("invalid upsertRace: %d %s", r.status, r.body)
	}
}
