package simdb

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fixedNow is the simulated "now" of these tests: a few weeks after the seed
// data's dates.
var fixedNow = time.Date(2025, 2, 10, 12, 0, 0, 0, time.UTC)

func newSeededDB(t testing.TB) *DB {
	t.Helper()
	db, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	db.SetNow(func() time.Time { return fixedNow })
	return db
}

func mustQuery(t testing.TB, db *DB, stmt string) *QueryResult {
	t.Helper()
	res, err := db.Query(stmt, QueryOptions{APIVersion: "66.0"})
	if err != nil {
		t.Fatalf("Query(%q): %v", stmt, err)
	}
	return res
}

func values(t testing.TB, recs []*Record, field string) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		v, ok := r.Get(field)
		if !ok {
			t.Fatalf("record has no %s: %v", field, r.Fields())
		}
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func TestDefaultCounts(t *testing.T) {
	db := newSeededDB(t)
	want := map[string]int{"Account": 100, "Contact": 300, "Case": 150, "Lead": 100, "Task": 200}
	for obj, n := range want {
		if got := db.Count(obj); got != n {
			t.Errorf("Count(%s) = %d, want %d", obj, got, n)
		}
	}
}

func TestQuery(t *testing.T) {
	db := newSeededDB(t)
	tests := []struct {
		name  string
		given string
		field string
		want  []string // values of field, in order
	}{
		{"equality on phone", "SELECT Id, Name, Email FROM Contact WHERE Phone = '+1 415 555 0100'", "Name", []string{"Ada Byron"}},
		{"case-insensitive names and values", "select NAME from contact WHERE email = 'ADA@EXAMPLE.COM'", "Name", []string{"Ada Byron"}},
		{"escaped quote", `SELECT Name FROM Contact WHERE LastName = 'O\'Brien'`, "Name", []string{"Siobhan O'Brien"}},
		{"like prefix", "SELECT Name FROM Contact WHERE Name LIKE 'ada b%'", "Name", []string{"Ada Byron"}},
		{"like escaped wildcards", `SELECT Name FROM Contact WHERE LastName LIKE '100\% Sure\_Test'`, "Name", []string{"Percy 100% Sure_Test"}},
		{"like escaped wildcards do not match others", `SELECT Name FROM Contact WHERE LastName LIKE '100\%'`, "Name", nil},
		{"in", "SELECT External_Id__c FROM Contact WHERE External_Id__c IN ('CON-0003', 'con-0001') ORDER BY External_Id__c", "External_Id__c", []string{"CON-0001", "CON-0003"}},
		{"and or not", "SELECT Name FROM Contact WHERE (FirstName = 'Ada' OR FirstName = 'Grace') AND NOT LastName = 'Hopper' AND Email != null", "Name", []string{"Ada Byron"}},
		{"null lookup", "SELECT Name FROM Contact WHERE AccountId = null AND Email = 'grace@example.org'", "Name", []string{"Grace Hopper"}},
		{"parent field filter", "SELECT Name FROM Contact WHERE Account.Name = 'Acme Corporation' AND Id IN ('003Hs000000001d', '003Hs000000001eIAA') ORDER BY Name DESC", "Name", []string{"Siobhan O'Brien", "Ada Byron"}},
		{"date equality", "SELECT CallObject FROM Task WHERE ActivityDate = 2025-01-06 AND CallObject = 'CALL-000001'", "CallObject", []string{"CALL-000001"}},
		{"datetime comparison", "SELECT External_Id__c FROM Account WHERE CreatedDate < 2025-01-06T12:30:00Z ORDER BY CreatedDate", "External_Id__c", []string{"ACC-0001", "ACC-0002"}},
		{"datetime with offset", "SELECT External_Id__c FROM Account WHERE CreatedDate < 2025-01-06T14:30:00+02:00 ORDER BY CreatedDate", "External_Id__c", []string{"ACC-0001", "ACC-0002"}},
		{"order limit offset", "SELECT External_Id__c FROM Contact ORDER BY External_Id__c DESC LIMIT 2 OFFSET 1", "External_Id__c", []string{"CON-0299", "CON-0298"}},
		{"order nulls first", "SELECT Email FROM Contact WHERE External_Id__c IN ('CON-0001', 'CON-0003') ORDER BY AccountId NULLS FIRST", "Email", []string{"grace@example.org", "ada@example.com"}},
		{"order nulls last", "SELECT Email FROM Contact WHERE External_Id__c IN ('CON-0001', 'CON-0003') ORDER BY AccountId NULLS LAST", "Email", []string{"ada@example.com", "grace@example.org"}},
		{"boolean and number", "SELECT CallObject FROM Task WHERE IsClosed = true AND CallDurationInSeconds = 312", "CallObject", []string{"CALL-000001"}},
		{"picklist comparison", "SELECT CaseNumber FROM Case WHERE Status = 'new' AND Priority = 'High' AND Origin = 'Phone' AND Subject LIKE 'Analytical%'", "CaseNumber", []string{"00001001"}},
		{"object-qualified field", "SELECT Contact.Name FROM Contact WHERE Contact.Email = 'ada@example.com'", "Name", []string{"Ada Byron"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustQuery(t, db, tt.given)
			got := values(t, res.Records, tt.field)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || res.TotalSize != len(tt.want) {
				t.Fatalf("got %q (total %d), want %q", got, res.TotalSize, tt.want)
			}
		})
	}
}

func TestQueryCountsAndPartitions(t *testing.T) {
	db := newSeededDB(t)
	count := func(stmt string) int {
		t.Helper()
		res := mustQuery(t, db, stmt)
		if len(res.Records) != 0 {
			t.Fatalf("COUNT() returned records")
		}
		return res.TotalSize
	}
	if n := count("SELECT COUNT() FROM Contact"); n != 300 {
		t.Fatalf("count %d", n)
	}
	if a, b := count("SELECT COUNT() FROM Contact WHERE AccountId = null"), count("SELECT COUNT() FROM Contact WHERE AccountId != null"); a+b != 300 || a == 0 || b == 0 {
		t.Fatalf("null partition %d + %d", a, b)
	}
	if a, b := count("SELECT COUNT() FROM Case WHERE Status IN ('Closed')"), count("SELECT COUNT() FROM Case WHERE Status NOT IN ('Closed')"); a+b != 150 || a == 0 {
		t.Fatalf("in partition %d + %d", a, b)
	}
	if a, b := count("SELECT COUNT() FROM Case WHERE IsClosed = true"), count("SELECT COUNT() FROM Case WHERE Status = 'Closed'"); a != b {
		t.Fatalf("IsClosed %d != Status Closed %d", a, b)
	}
	lt, ge := count("SELECT COUNT() FROM Task WHERE ActivityDate < 2025-03-01"), count("SELECT COUNT() FROM Task WHERE ActivityDate >= 2025-03-01")
	if lt+ge != 200 || lt == 0 || ge == 0 {
		t.Fatalf("date partition %d + %d", lt, ge)
	}
	// Relative dates against the fixed clock (2025-02-10).
	last7 := count("SELECT COUNT() FROM Task WHERE ActivityDate = LAST_N_DAYS:7")
	manual := count("SELECT COUNT() FROM Task WHERE ActivityDate >= 2025-02-03 AND ActivityDate <= 2025-02-10")
	if last7 != manual || last7 == 0 {
		t.Fatalf("LAST_N_DAYS:7 = %d, manual range %d", last7, manual)
	}
	if a, b := count("SELECT COUNT() FROM Task WHERE ActivityDate = TODAY"), count("SELECT COUNT() FROM Task WHERE ActivityDate = 2025-02-10"); a != b {
		t.Fatalf("TODAY %d != %d", a, b)
	}
	if n := count("SELECT COUNT() FROM Contact LIMIT 5"); n != 5 {
		t.Fatalf("count with limit %d", n)
	}
}

func TestQueryRelationshipJSON(t *testing.T) {
	db := newSeededDB(t)
	res := mustQuery(t, db, "SELECT Name, Account.Name, Account.Phone, Email FROM Contact WHERE Email = 'ada@example.com'")
	got, err := json.Marshal(res.Records[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"attributes":{"type":"Contact","url":"/services/data/v66.0/sobjects/Contact/003Hs000000001dIAA"},"Name":"Ada Byron","Account":{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/001Hs0000000001IAA"},"Name":"Acme Corporation","Phone":"+1 415 555 0000"},"Email":"ada@example.com"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	res = mustQuery(t, db, "SELECT Name, Account.Name FROM Contact WHERE Email = 'grace@example.org'")
	got, _ = json.Marshal(res.Records[0])
	if !strings.Contains(string(got), `"Account":null`) {
		t.Fatalf("empty lookup not null: %s", got)
	}

	res = mustQuery(t, db, "SELECT CaseNumber, Contact.Name, Contact.Account.Name, CreatedDate, IsClosed FROM Case WHERE CaseNumber = '00001001'")
	r := res.Records[0]
	contact, _ := r.Get("Contact")
	cr, ok := contact.(*Record)
	if !ok {
		t.Fatalf("Contact is %T", contact)
	}
	acc, _ := cr.Get("Account")
	if name, _ := acc.(*Record).Get("Name"); name != "Acme Corporation" {
		t.Fatalf("two-level lookup: %v", name)
	}
	if v, _ := r.Get("CreatedDate"); v != "2025-01-06T12:14:00.000+0000" {
		t.Fatalf("datetime format %v", v)
	}
	if v, _ := r.Get("IsClosed"); v != false {
		t.Fatalf("IsClosed %v", v)
	}

	res = mustQuery(t, db, "SELECT Who.Name, What.Name, CallDurationInSeconds, ActivityDate FROM Task WHERE CallObject = 'CALL-000001'")
	got, _ = json.Marshal(res.Records[0])
	for _, part := range []string{`"Who":{"attributes":{"type":"Contact"`, `"Name":"Ada Byron"`, `"What":{"attributes":{"type":"Case"`, `"Name":"00001001"`, `"CallDurationInSeconds":312`, `"ActivityDate":"2025-01-06"`} {
		if !strings.Contains(string(got), part) {
			t.Errorf("polymorphic lookup: %s lacks %s", got, part)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	db := newSeededDB(t)
	tests := []struct {
		name     string
		given    string
		wantCode string
		wantMsg  string
	}{
		{"unknown field", "SELECT Id, Foo FROM Contact", "INVALID_FIELD",
			"\nSELECT Id, Foo FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."},
		{"unknown object", "SELECT Id FROM Foo", "INVALID_TYPE",
			"\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\nsObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."},
		{"unknown parent field", "SELECT Account.Foo FROM Contact", "INVALID_FIELD",
			"\nSELECT Account.Foo FROM Contact\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."},
		{"unknown relationship", "SELECT Acct.Name FROM Contact", "INVALID_FIELD",
			"\nSELECT Acct.Name FROM Contact\n       ^\nERROR at Row:1:Column:8\nDidn't understand relationship 'Acct' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."},
		{"unknown where field", "SELECT Id FROM Contact WHERE Foo = 'x'", "INVALID_FIELD",
			"\nSELECT Id FROM Contact WHERE Foo = 'x'\n                             ^\nERROR at Row:1:Column:30\nNo such column 'Foo' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."},
		{"quoted boolean", "SELECT Id FROM Case WHERE IsClosed = 'true'", "INVALID_FIELD",
			"\nSELECT Id FROM Case WHERE IsClosed = 'true'\n                                     ^\nERROR at Row:1:Column:38\nvalue of filter criterion for field 'IsClosed' must be of type boolean and should not be enclosed in quotes"},
		{"unquoted string", "SELECT Id FROM Contact WHERE LastName = 42", "INVALID_FIELD",
			"\nSELECT Id FROM Contact WHERE LastName = 42\n                                        ^\nERROR at Row:1:Column:41\nvalue of filter criterion for field 'LastName' must be of type string and should be enclosed in quotes"},
		{"quoted number", "SELECT Id FROM Task WHERE CallDurationInSeconds > '10'", "INVALID_FIELD",
			"\nSELECT Id FROM Task WHERE CallDurationInSeconds > '10'\n                                                  ^\nERROR at Row:1:Column:51\nvalue of filter criterion for field 'CallDurationInSeconds' must be of type integer and should not be enclosed in quotes"},
		{"date for datetime", "SELECT Id FROM Task WHERE CreatedDate > 2025-01-01", "INVALID_FIELD",
			"\nSELECT Id FROM Task WHERE CreatedDate > 2025-01-01\n                                        ^\nERROR at Row:1:Column:41\nvalue of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"},
		{"quoted date", "SELECT Id FROM Task WHERE ActivityDate = '2025-01-01'", "INVALID_FIELD",
			"\nSELECT Id FROM Task WHERE ActivityDate = '2025-01-01'\n                                         ^\nERROR at Row:1:Column:42\nvalue of filter criterion for field 'ActivityDate' must be of type date and should not be enclosed in quotes"},
		{"bad id", "SELECT Id FROM Contact WHERE AccountId = 'nope'", "INVALID_QUERY_FILTER_OPERATOR",
			"\nSELECT Id FROM Contact WHERE AccountId = 'nope'\n                                         ^\nERROR at Row:1:Column:42\ninvalid ID field: nope"},
		{"duplicate field", "SELECT Name, name FROM Contact", "INVALID_FIELD",
			"\nSELECT Name, name FROM Contact\n             ^\nERROR at Row:1:Column:14\nduplicate field selected: name"},
		{"syntax", "SELECT Id FROM Contact WHERE", "MALFORMED_QUERY",
			"\nSELECT Id FROM Contact WHERE\n                            ^\nERROR at Row:1:Column:29\nunexpected token: '<EOF>'"},
		{"offset too big", "SELECT Id FROM Contact OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"},
		{"long text area in where", "SELECT Id FROM Task WHERE Description = 'x'", "INVALID_FIELD",
			"\nSELECT Id FROM Task WHERE Description = 'x'\n                          ^\nERROR at Row:1:Column:27\nfield 'Description' can not be filtered in a query call"},
		{"long text area in like", "SELECT Id FROM Case WHERE Subject = 'a' AND description LIKE '%x%'", "INVALID_FIELD",
			"\nSELECT Id FROM Case WHERE Subject = 'a' AND description LIKE '%x%'\n                                            ^\nERROR at Row:1:Column:45\nfield 'Description' can not be filtered in a query call"},
		{"long text area through a relationship", "SELECT Id FROM Contact WHERE Account.Description != null", "INVALID_FIELD",
			"\nSELECT Id FROM Contact WHERE Account.Description != null\n                             ^\nERROR at Row:1:Column:30\nfield 'Description' can not be filtered in a query call"},
		{"long text area in order by", "SELECT Id FROM Account ORDER BY Description", "MALFORMED_QUERY",
			"\nSELECT Id FROM Account ORDER BY Description\n                                ^\nERROR at Row:1:Column:33\nfield 'Description' can not be sorted in a query call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Query(tt.given, QueryOptions{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Status != 400 || e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Fatalf("got %d %s %q\nwant %s %q", e.Status, e.Code, e.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	db := New()
	s, err := db.Describe("contact")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "Contact" || s.KeyPrefix != "003" || !s.Queryable {
		t.Fatalf("schema %+v", s)
	}
	byName := map[string]FieldSchema{}
	for _, f := range s.Fields {
		byName[f.Name] = f
	}
	if f := byName["AccountId"]; f.Type != "reference" || f.RelationshipName != "Account" || f.ReferenceTo[0] != "Account" {
		t.Fatalf("AccountId %+v", f)
	}
	if f := byName["External_Id__c"]; !f.ExternalID || !f.Unique || f.Length != 255 {
		t.Fatalf("External_Id__c %+v", f)
	}
	if f := byName["Name"]; f.Createable {
		t.Fatal("Contact.Name must not be createable")
	}
	s.Fields[0].Name = "changed" // a copy: must not leak into the DB
	if s2, _ := db.Describe("Contact"); s2.Fields[0].Name != "Id" {
		t.Fatal("Describe returned shared slice")
	}
	if len(db.Objects()) != 5 {
		t.Fatal("Objects")
	}
	_, err = db.Describe("Foo")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "NOT_FOUND" || e.Message != "The requested resource does not exist" {
		t.Fatalf("unknown object: %v", err)
	}
	if !errors.Is(err, &Error{Code: CodeNotFound}) {
		t.Fatal("errors.Is by code")
	}
}

func BenchmarkQuery(b *testing.B) {
	db := newSeededDB(b)
	for b.Loop() {
		if _, err := db.Query("SELECT Id, Name, Account.Name FROM Contact WHERE (Phone LIKE '%555%' OR Email != null) AND Account.Name != 'x' ORDER BY Name LIMIT 50", QueryOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
