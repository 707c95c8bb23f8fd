package sfsim

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// seeded starts a simulator on the seed data and returns it with a token.
func seeded(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	db, err := simdb.Default()
	if err != nil {
		t.Fatal(err)
	}
	opts.DB = db
	s := startSim(t, opts)
	return s, s.IssueToken("").AccessToken
}

func TestVersionsAndResources(t *testing.T) {
	s, tok := seeded(t, Options{})
	resp := call(t, http.MethodGet, s.MyDomainURL()+"/services/data/", "", nil)
	var versions []versionInfo
	resp.json(t, &versions)
	last := versions[len(versions)-1]
	if resp.status != 200 || last != (versionInfo{Label: "Spring '26", URL: "/services/data/v66.0", Version: "66.0"}) {
		t.Fatalf("versions: %d, last %+v", resp.status, last)
	}
	if ct := resp.header.Get("Content-Type"); ct != contentTypeJSON {
		t.Errorf("Content-Type %q, want %q", ct, contentTypeJSON)
	}
	resp = call(t, http.MethodGet, dataURL(s, ""), tok, nil)
	var res map[string]string
	resp.json(t, &res)
	if res["query"] != "/services/data/v66.0/query" || res["sobjects"] != "/services/data/v66.0/sobjects" {
		t.Fatalf("resources: %v", res)
	}
	tests := []struct {
		name, method, url string
		status            int
		code              string
	}{
		{"unknown version", "GET", s.MyDomainURL() + "/services/data/v12.0/limits", 404, "NOT_FOUND"},
		{"unknown resource", "GET", dataURL(s, "nope"), 404, "NOT_FOUND"},
		{"unknown object", "GET", dataURL(s, "sobjects/Nope/describe"), 404, "NOT_FOUND"},
		{"outside services", "GET", s.MyDomainURL() + "/nothing", 404, "NOT_FOUND"},
		{"wrong method", "DELETE", dataURL(s, "limits"), 405, "METHOD_NOT_ALLOWED"},
		{"wrong method on query", "POST", dataURL(s, "query"), 405, "METHOD_NOT_ALLOWED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := call(t, tt.method, tt.url, tok, nil)
			if resp.status != tt.status || resp.errorCode(t) != tt.code {
				t.Fatalf("%d %s, want %d %s", resp.status, resp.body, tt.status, tt.code)
			}
			if tt.status == 405 && resp.header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	s, tok := seeded(t, Options{})
	var global struct {
		Sobjects []struct {
			Name      string `json:"name"`
			KeyPrefix string `json:"keyPrefix"`
		} `json:"sobjects"`
	}
	call(t, "GET", dataURL(s, "sobjects"), tok, nil).json(t, &global)
	names := map[string]string{}
	for _, o := range global.Sobjects {
		names[o.Name] = o.KeyPrefix
	}
	if names["Contact"] != "003" || names["Account"] != "001" {
		t.Fatalf("describeGlobal: %v", names)
	}
	var desc struct {
		Name   string `json:"name"`
		Fields []struct {
			Name       string `json:"name"`
			ExternalID bool   `json:"externalId"`
		} `json:"fields"`
	}
	call(t, "GET", dataURL(s, "sobjects/Contact/describe"), tok, nil).json(t, &desc)
	ext := false
	for _, f := range desc.Fields {
		if f.Name == "External_Id__c" && f.ExternalID {
			ext = true
		}
	}
	if desc.Name != "Contact" || !ext {
		t.Fatalf("describe Contact: name %q, External_Id__c external: %v", desc.Name, ext)
	}
	if r := call(t, "GET", dataURL(s, "sobjects/Contact"), tok, nil); r.status != 200 || !strings.Contains(string(r.body), `"objectDescribe"`) {
		t.Fatalf("basic info: %d %s", r.status, r.body)
	}
}

func TestLimitsHeaderAndExhaustion(t *testing.T) {
	s, tok := seeded(t, Options{DailyAPILimit: 3})
	for i := 1; i <= 3; i++ {
		resp := call(t, "GET", dataURL(s, "limits"), tok, nil)
		if want := fmt.Sprintf("api-usage=%d/3", i); resp.header.Get("Sforce-Limit-Info") != want {
			t.Fatalf("call %d: Sforce-Limit-Info %q, want %q", i, resp.header.Get("Sforce-Limit-Info"), want)
		}
		var lim map[string]limitInfo
		resp.json(t, &lim)
		if lim["DailyApiRequests"] != (limitInfo{Max: 3, Remaining: 3 - i}) {
			t.Fatalf("call %d: DailyApiRequests %+v", i, lim["DailyApiRequests"])
		}
	}
	resp := call(t, "GET", dataURL(s, "query?q="+url.QueryEscape("SELECT Id FROM Account")), tok, nil)
	if resp.status != http.StatusForbidden || resp.errorCode(t) != "REQUEST_LIMIT_EXCEEDED" {
		t.Fatalf("past limit: %d %s", resp.status, resp.body)
	}
	if got := resp.header.Get("Sforce-Limit-Info"); got != "api-usage=3/3" {
		t.Errorf("past limit header %q", got)
	}
	st := s.Stats()
	if st.APICalls[KindLimits] != 3 || st.APICalls[KindQuery] != 0 || st.LimitExceeded != 1 {
		t.Errorf("stats %+v", st)
	}
	// Unauthenticated calls do not count.
	call(t, "GET", dataURL(s, "limits"), "bogus", nil)
	if used, _ := s.APIUsage(); used != 3 {
		t.Errorf("used %d after 401, want 3", used)
	}
}

func TestCreateGetUpsert(t *testing.T) {
	s, tok := seeded(t, Options{})
	resp := call(t, "POST", dataURL(s, "sobjects/Contact/"), tok, `{"LastName":"Lovelace","FirstName":"Ada","Email":"ada.l@example.com"}`)
	var created saveResult
	resp.json(t, &created)
	if resp.status != 201 || !created.Success || !strings.HasPrefix(created.ID, "003") || len(created.ID) != 18 {
		t.Fatalf("create: %d %s", resp.status, resp.body)
	}
	resp = call(t, "GET", dataURL(s, "sobjects/Contact/"+created.ID+"?fields=LastName,Email"), tok, nil)
	if resp.status != 200 || !strings.Contains(string(resp.body), `"LastName":"Lovelace"`) {
		t.Fatalf("get: %d %s", resp.status, resp.body)
	}

	path := dataURL(s, "sobjects/Contact/External_Id__c/EXT-42")
	tests := []struct {
		name   string
		method string
		url    string
		body   string
		status int
		want   string
	}{
		{"upsert creates", "PATCH", path, `{"LastName":"Ext"}`, 201, `"created":true`},
		{"upsert updates", "PATCH", path, `{"LastName":"Ext2"}`, 200, `"created":false`},
		{"upsert old API updates with 204", "PATCH", s.MyDomainURL() + "/services/data/v45.0/sobjects/Contact/External_Id__c/EXT-42", `{"LastName":"Ext3"}`, 204, ""},
		{"unknown external id field", "PATCH", dataURL(s, "sobjects/Contact/Foo__c/1"), `{"LastName":"X"}`, 404, "NOT_FOUND"},
		{"malformed json", "POST", dataURL(s, "sobjects/Contact"), `{"LastName":`, 400, "JSON_PARSER_ERROR"},
		{"bad json char", "POST", dataURL(s, "sobjects/Contact"), `{x}`, 400, "Unexpected character ('x' (code 120))"},
		{"array body", "POST", dataURL(s, "sobjects/Contact"), `[1]`, 400, "JSON_PARSER_ERROR"},
		{"required field", "POST", dataURL(s, "sobjects/Contact"), `{"FirstName":"A"}`, 400, "REQUIRED_FIELD_MISSING"},
		{"id in body", "POST", dataURL(s, "sobjects/Contact"), `{"Id":"003000000000001AAA","LastName":"A"}`, 400, "INVALID_FIELD"},
		{"update by id", "PATCH", dataURL(s, "sobjects/Contact/"+created.ID), `{"Title":"Countess"}`, 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := call(t, tt.method, tt.url, tok, tt.body)
			if resp.status != tt.status || !strings.Contains(string(resp.body), tt.want) {
				t.Fatalf("%d %s, want %d containing %q", resp.status, resp.body, tt.status, tt.want)
			}
		})
	}
	if got := s.Stats().RecordsCreated; got != 2 {
		t.Errorf("RecordsCreated = %d, want 2", got)
	}
}

func TestCollections(t *testing.T) {
	s, tok := seeded(t, Options{})
	before := s.DB().Count("Account")
	body := `{"allOrNone":false,"records":[
		{"attributes":{"type":"Account"},"Name":"Coll A"},
		{"attributes":{"type":"Contact"},"LastName":"Coll C"},
		{"attributes":{"type":"Account"}},
		{"Name":"no type"}]}`
	resp := call(t, "POST", dataURL(s, "composite/sobjects"), tok, body)
	var results []saveResult
	resp.json(t, &results)
	if resp.status != 200 || len(results) != 4 {
		t.Fatalf("collections: %d %s", resp.status, resp.body)
	}
	if !results[0].Success || !results[1].Success || results[2].Success || results[3].Success {
		t.Fatalf("results %+v", results)
	}
	if results[2].Errors[0].StatusCode != "REQUIRED_FIELD_MISSING" || results[3].Errors[0].StatusCode != "INVALID_TYPE" {
		t.Fatalf("errors %+v", results)
	}
	if got := s.DB().Count("Account"); got != before+1 {
		t.Fatalf("accounts %d, want %d", got, before+1)
	}

	// allOrNone: nothing stays, the valid record reports the rollback.
	resp = call(t, "POST", dataURL(s, "composite/sobjects"), tok,
		`{"allOrNone":true,"records":[{"attributes":{"type":"Account"},"Name":"AON"},{"attributes":{"type":"Account"}}]}`)
	resp.json(t, &results)
	if results[0].Success || results[0].Errors[0].StatusCode != "ALL_OR_NONE_OPERATION_ROLLED_BACK" || results[1].Errors[0].StatusCode != "REQUIRED_FIELD_MISSING" {
		t.Fatalf("allOrNone: %s", resp.body)
	}
	if got := s.DB().Count("Account"); got != before+1 {
		t.Fatalf("accounts after rollback %d, want %d", got, before+1)
	}
	q := call(t, "GET", dataURL(s, "query?q="+url.QueryEscape("SELECT Id FROM Account WHERE Name = 'AON'")), tok, nil)
	if !strings.Contains(string(q.body), `"totalSize":0`) {
		t.Fatalf("rolled-back record visible: %s", q.body)
	}

	var many strings.Builder
	many.WriteString(`{"records":[`)
	for i := 0; i < 201; i++ {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `{"attributes":{"type":"Account"},"Name":"N%d"}`, i)
	}
	many.WriteString(`]}`)
	resp = call(t, "POST", dataURL(s, "composite/sobjects"), tok, many.String())
	if resp.status != 400 || resp.errorCode(t) != "EXCEEDED_ID_LIMIT" {
		t.Fatalf("201 records: %d %s", resp.status, resp.body)
	}
	if got := s.Stats().RecordsCreated; got != 2 {
		t.Errorf("RecordsCreated = %d, want 2", got)
	}
}

// queryAllPages follows nextRecordsUrl and returns every record ID.
func queryAllPages(t *testing.T, s *Server, tok, first string, hdr ...string) (ids []string, pages, total int) {
	t.Helper()
	next := first
	for next != "" {
		resp := call(t, "GET", next, tok, nil, hdr...)
		var page struct {
			TotalSize      int    `json:"totalSize"`
			Done           bool   `json:"done"`
			NextRecordsURL string `json:"nextRecordsUrl"`
			Records        []struct {
				ID string `json:"Id"`
			} `json:"records"`
		}
		if resp.status != 200 {
			t.Fatalf("page %d: %d %s", pages, resp.status, resp.body)
		}
		resp.json(t, &page)
		pages++
		total = page.TotalSize
		for _, r := range page.Records {
			ids = append(ids, r.ID)
		}
		if page.Done != (page.NextRecordsURL == "") {
			t.Fatalf("done=%v with nextRecordsUrl %q", page.Done, page.NextRecordsURL)
		}
		next = ""
		if page.NextRecordsURL != "" {
			if !strings.HasPrefix(page.NextRecordsURL, "/services/data/v66.0/query/01g") {
				t.Fatalf("nextRecordsUrl %q", page.NextRecordsURL)
			}
			next = s.MyDomainURL() + page.NextRecordsURL
		}
	}
	return ids, pages, total
}

func TestQueryPaging(t *testing.T) {
	s, tok := seeded(t, Options{})
	n := s.DB().Count("Contact")
	if n <= 200 {
		t.Fatalf("seed has %d contacts; paging needs more than 200", n)
	}
	first := dataURL(s, "query?q="+url.QueryEscape("SELECT Id FROM Contact"))
	ids, pages, total := queryAllPages(t, s, tok, first, "Sforce-Query-Options", "batchSize=200")
	if total != n || len(ids) != n || pages != (n+199)/200 {
		t.Fatalf("total %d ids %d pages %d; contacts %d", total, len(ids), pages, n)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate %s across pages", id)
		}
		seen[id] = true
	}
	// Default batch size 2000 returns everything at once.
	if _, pages, _ := queryAllPages(t, s, tok, first); pages != 1 {
		t.Fatalf("default batch: %d pages", pages)
	}
	// batchSize below 200 is raised to 200 (it is a hint).
	if _, pages, _ := queryAllPages(t, s, tok, first, "Sforce-Query-Options", "batchSize=5"); pages != (n+199)/200 {
		t.Fatalf("batchSize=5: %d pages", pages)
	}
	st := s.Stats()
	if st.APICalls[KindQuery] != 3 || st.APICalls[KindQueryMore] != int64(2*(pages-1)) {
		t.Errorf("calls %v", st.APICalls)
	}
}

func TestQueryLocatorErrors(t *testing.T) {
	clock := newFakeClock()
	s, tok := seeded(t, Options{Now: clock.Now, MaxQueryCursors: 2})
	open := func() string {
		resp := call(t, "GET", dataURL(s, "query?q="+url.QueryEscape("SELECT Id FROM Contact")), tok, nil, "Sforce-Query-Options", "batchSize=200")
		var page queryResponseJSON
		resp.json(t, &page)
		if page.NextRecordsURL == "" {
			t.Fatalf("no locator: %s", resp.body)
		}
		return s.MyDomainURL() + page.NextRecordsURL
	}
	invalid := func(u string) {
		t.Helper()
		resp := call(t, "GET", u, tok, nil)
		if resp.status != 400 || resp.errorCode(t) != "INVALID_QUERY_LOCATOR" {
			t.Fatalf("%s: %d %s", u, resp.status, resp.body)
		}
	}
	invalid(dataURL(s, "query/01gbogus-200"))
	invalid(dataURL(s, "query/nodash"))

	a := open()
	open()
	open() // a third cursor releases the oldest
	invalid(a)

	b := open()
	clock.Advance(16 * time.Minute)
	invalid(b)
}

type queryResponseJSON struct {
	TotalSize      int    `json:"totalSize"`
	Done           bool   `json:"done"`
	NextRecordsURL string `json:"nextRecordsUrl"`
}

func TestQueryAllSeesDeleted(t *testing.T) {
	s, tok := seeded(t, Options{})
	resp := call(t, "POST", dataURL(s, "sobjects/Lead"), tok, `{"LastName":"Gone","Company":"Vanish Inc"}`)
	var created saveResult
	resp.json(t, &created)
	if r := call(t, "DELETE", dataURL(s, "sobjects/Lead/"+created.ID), tok, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	soql := url.QueryEscape("SELECT Id, IsDeleted FROM Lead WHERE Company = 'Vanish Inc'")
	var q, qa queryResponseJSON
	call(t, "GET", dataURL(s, "query?q="+soql), tok, nil).json(t, &q)
	call(t, "GET", dataURL(s, "queryAll?q="+soql), tok, nil).json(t, &qa)
	if q.TotalSize != 0 || qa.TotalSize != 1 {
		t.Fatalf("query %d, queryAll %d; want 0 and 1", q.TotalSize, qa.TotalSize)
	}
	// queryAll pages through nextRecordsUrl under /query/, as documented.
	all := dataURL(s, "queryAll?q="+url.QueryEscape("SELECT Id FROM Contact"))
	if ids, pages, _ := queryAllPages(t, s, tok, all, "Sforce-Query-Options", "batchSize=200"); len(ids) != s.DB().Count("Contact") || pages < 2 {
		t.Fatalf("queryAll paging: %d ids in %d pages", len(ids), pages)
	}
	if st := s.Stats(); st.APICalls[KindQueryAll] != 2 || st.APICalls[KindDelete] != 1 {
		t.Errorf("calls %v", st.APICalls)
	}
}

func TestSearch(t *testing.T) {
	s, tok := seeded(t, Options{})
	type searchBody struct {
		SearchRecords []struct {
			Attributes struct{ Type string } `json:"attributes"`
			Name       string                `json:"Name"`
		} `json:"searchRecords"`
	}
	tests := []struct {
		name, method, path, body string
	}{
		{"sosl", "GET", "search?q=" + url.QueryEscape("FIND {Byron} IN NAME FIELDS RETURNING Contact(Name)"), ""},
		{"parameterized get", "GET", "parameterizedSearch?q=Byron&sobject=Contact&Contact.fields=Name&in=NAME", ""},
		{"parameterized post", "POST", "parameterizedSearch", `{"q":"Byron","in":"NAME","sobjects":[{"name":"Contact","fields":["Name"]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			resp := call(t, tt.method, dataURL(s, tt.path), tok, body)
			var got searchBody
			resp.json(t, &got)
			found := false
			for _, r := range got.SearchRecords {
				if r.Attributes.Type == "Contact" && r.Name == "Ada Byron" {
					found = true
				}
			}
			if resp.status != 200 || !found {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
		})
	}
	resp := call(t, "GET", dataURL(s, "search?q="+url.QueryEscape("FIND Byron")), tok, nil)
	if resp.status != 400 || resp.errorCode(t) != "MALFORMED_SEARCH" {
		t.Fatalf("bad sosl: %d %s", resp.status, resp.body)
	}
	st := s.Stats()
	if st.APICalls[KindSearch] != 2 || st.APICalls[KindParameterizedSearch] != 2 {
		t.Errorf("calls %v", st.APICalls)
	}
}
