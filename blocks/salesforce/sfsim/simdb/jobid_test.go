package simdb

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// objectBodies is a minimal valid create body for every object.
var objectBodies = map[string]map[string]any{
	"Account": {"Name": "Job Co"},
	"Contact": {"LastName": "Job"},
	"Case":    {"Subject": "Job case"},
	"Lead":    {"LastName": "Job", "Company": "Job Co"},
	"Task":    {"Subject": "Call from x", "Status": "Completed"},
}

func copyBody(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestJobIDFieldOnEveryObject(t *testing.T) {
	db := newSeededDB(t)
	for _, o := range db.Objects() {
		t.Run(o.Name, func(t *testing.T) {
			var job *FieldSchema
			after := ""
			for i, f := range o.Fields {
				if f.Name == JobIDField {
					job = &o.Fields[i]
					after = o.Fields[i-1].Name
				}
			}
			if job == nil {
				t.Fatalf("%s has no %s", o.Name, JobIDField)
			}
			want := FieldSchema{
				Name: JobIDField, Label: "SFBlocks Job ID", Type: "string", Length: 255,
				Nillable: true, Createable: true, Updateable: true, Unique: true, ExternalID: true, IDLookup: true,
				CaseSensitive: true, Filterable: true, Sortable: true, Groupable: true,
			}
			if fmt.Sprintf("%+v", *job) != fmt.Sprintf("%+v", want) {
				t.Errorf("got  %+v\nwant %+v", *job, want)
			}
			if after != "External_Id__c" {
				t.Errorf("%s follows %s, want External_Id__c", JobIDField, after)
			}
			// The seed leaves it null everywhere.
			if n := mustQuery(t, db, "SELECT COUNT() FROM "+o.Name+" WHERE SFBlocks_Job_Id__c != null").TotalSize; n != 0 {
				t.Errorf("%d seeded %s records carry a job id", n, o.Name)
			}
		})
	}
}

// TestJobIDUpsert walks one job identity through the upsert outcomes on every
// object, in order: each step sees what the previous ones stored.
func TestJobIDUpsert(t *testing.T) {
	for object, body := range objectBodies {
		t.Run(object, func(t *testing.T) {
			db := newSeededDB(t)
			before := db.Count(object)
			steps := []struct {
				name        string
				value       string
				create      bool // Create with the value in the body instead of Upsert
				wantCreated bool
				wantCode    string
				wantCount   int // records added so far
			}{
				{"first attempt creates", "job-7/attempt", false, true, "", 1},
				{"retry updates the same record", "job-7/attempt", false, false, "", 1},
				// Case-sensitive: another case is another identity.
				{"other case is another record", "JOB-7/attempt", false, true, "", 2},
				{"plain create of a taken value", "job-7/attempt", true, false, CodeDuplicateValue, 2},
				{"plain create of a new case", "Job-7/Attempt", true, true, "", 3},
			}
			ids := map[string]string{}
			for _, st := range steps {
				var id string
				var created bool
				var err error
				if st.create {
					b := copyBody(body)
					b[JobIDField] = st.value
					id, err = db.Create(object, b)
					created = err == nil
				} else {
					id, created, err = db.Upsert(object, JobIDField, st.value, copyBody(body))
				}
				if st.wantCode != "" {
					if !errors.Is(err, &Error{Code: st.wantCode}) {
						t.Fatalf("%s: err = %v, want %s", st.name, err, st.wantCode)
					}
				} else if err != nil || created != st.wantCreated {
					t.Fatalf("%s: created=%v err=%v, want created=%v", st.name, created, err, st.wantCreated)
				}
				if err == nil {
					if prev, ok := ids[st.value]; ok && prev != id {
						t.Fatalf("%s: %s names %s, earlier %s", st.name, st.value, id, prev)
					}
					ids[st.value] = id
				}
				if got := db.Count(object) - before; got != st.wantCount {
					t.Fatalf("%s: %d records added, want %d", st.name, got, st.wantCount)
				}
			}
		})
	}
}

func TestExternalIDMatchingCase(t *testing.T) {
	tests := []struct {
		name        string
		field       string
		stored      string
		upsertWith  string
		wantCreated bool
	}{
		// Unique, case-insensitive: "ABC123" is matched with "abc123".
		{"unique case-insensitive folds", "External_Id__c", "NEW-9", "new-9", false},
		// Unique, case-sensitive: no match, so a second record.
		{"unique case-sensitive is exact", JobIDField, "NEW-9", "new-9", true},
		// Not unique: matching is case-sensitive too.
		{"non-unique is exact", "Legacy_Number__c", "LEG-9", "leg-9", true},
		{"same case always matches", "Legacy_Number__c", "LEG-9", "LEG-9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newSeededDB(t)
			if _, created, err := db.Upsert("Contact", tt.field, tt.stored, map[string]any{"LastName": "Case"}); err != nil || !created {
				t.Fatalf("seed upsert: %v", err)
			}
			_, created, err := db.Upsert("Contact", tt.field, tt.upsertWith, map[string]any{"LastName": "Case"})
			if err != nil || created != tt.wantCreated {
				t.Fatalf("created=%v err=%v, want created=%v", created, err, tt.wantCreated)
			}
		})
	}
}

// TestConcurrentJobIDUpserts races upserts of one new job id; run with
// -race. Exactly one record must result: one upsert creates it and every
// other updates it (Salesforce may instead answer a loser DUPLICATE_VALUE,
// which is also not a second record).
func TestConcurrentJobIDUpserts(t *testing.T) {
	const racers = 8
	for object, body := range objectBodies {
		t.Run(object, func(t *testing.T) {
			db := newSeededDB(t)
			before := db.Count(object)
			var wg sync.WaitGroup
			type outcome struct {
				id      string
				created bool
				err     error
			}
			results := make(chan outcome, racers)
			start := make(chan struct{})
			for range racers {
				wg.Go(func() {
					<-start
					id, created, err := db.Upsert(object, JobIDField, "race-job-1", copyBody(body))
					results <- outcome{id, created, err}
				})
			}
			close(start)
			wg.Wait()
			close(results)
			creates, ids := 0, map[string]bool{}
			for r := range results {
				if r.err != nil {
					if !errors.Is(r.err, &Error{Code: CodeDuplicateValue}) {
						t.Errorf("upsert: %v", r.err)
					}
					continue
				}
				ids[r.id] = true
				if r.created {
					creates++
				}
			}
			if creates != 1 || len(ids) != 1 {
				t.Fatalf("%d creates over ids %v, want exactly one record", creates, ids)
			}
			if got := db.Count(object) - before; got != 1 {
				t.Fatalf("%d records added, want 1", got)
			}
			res := mustQuery(t, db, "SELECT Id FROM "+object+" WHERE SFBlocks_Job_Id__c = 'race-job-1'")
			if res.TotalSize != 1 {
				t.Fatalf("query finds %d records", res.TotalSize)
			}
		})
	}
}

func TestMatchExternalID(t *testing.T) {
	db := newSeededDB(t)
	id, _, err := db.Upsert("Task", JobIDField, "m-1", map[string]any{"Subject": "m"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		object, field, value string
		want                 int
	}{
		{"Task", JobIDField, "m-1", 1},
		{"task", "sfblocks_job_id__c", "m-1", 1},
		{"Task", JobIDField, "M-1", 0}, // case-sensitive
		{"Contact", "External_Id__c", "con-0001", 1},
		{"Contact", "Legacy_Number__c", "LEG-DUP", 2},
		{"Task", "Subject", "m", 0}, // not an External ID
		{"Nope", JobIDField, "m-1", 0},
	}
	for _, tt := range tests {
		got := db.MatchExternalID(tt.object, tt.field, tt.value)
		if len(got) != tt.want || (tt.want == 1 && tt.object == "Task" && got[0] != id) {
			t.Errorf("%s.%s = %q: %v, want %d", tt.object, tt.field, tt.value, got, tt.want)
		}
	}
}
