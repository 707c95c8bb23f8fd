package simdb

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func recordTypesAndNames(t *testing.T, recs []*Record, field string) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		v, _ := r.Get(field)
		s, _ := v.(string)
		out = append(out, r.Type()+":"+s)
	}
	return out
}

func TestSearch(t *testing.T) {
	db := newSeededDB(t)
	tests := []struct {
		name  string
		given string
		field string
		want  []string
	}{
		{"name", "FIND {Ada Byron} IN NAME FIELDS RETURNING Contact(Name, Phone)", "Name", []string{"Contact:Ada Byron"}},
		{"phone digits", "FIND {4155550100} IN PHONE FIELDS RETURNING Contact(Name), Lead(Name)", "Name", []string{"Contact:Ada Byron"}},
		{"phone formatted and escaped", `FIND {\+1 \(415\) 555\-0100} IN PHONE FIELDS RETURNING Contact(Name)`, "Name", []string{"Contact:Ada Byron"}},
		{"email", "FIND {ada@example.com} IN EMAIL FIELDS RETURNING Contact(Name, Email)", "Name", []string{"Contact:Ada Byron"}},
		{"escaped quote", `FIND {O\'Brien} IN NAME FIELDS RETURNING Contact(Name)`, "Name", []string{"Contact:Siobhan O'Brien"}},
		{"name group excludes email", "FIND {ada@example.com} IN NAME FIELDS RETURNING Contact(Name)", "Name", nil},
		{"several objects", `FIND {Babbage OR Byron} IN NAME FIELDS RETURNING Contact(Name), Lead(Name)`, "Name", []string{"Contact:Ada Byron", "Lead:Charles Babbage"}},
		{"wildcard", "FIND {Byr*} IN NAME FIELDS RETURNING Contact(Name)", "Name", []string{"Contact:Ada Byron"}},
		{"phrase", `FIND {"Acme Corporation"} RETURNING Account(Name)`, "Name", []string{"Account:Acme Corporation"}},
		{"and not", `FIND {Acme AND NOT Globex} IN NAME FIELDS RETURNING Account(Name)`, "Name", []string{"Account:Acme Corporation"}},
		{"where and limit", `FIND {example} IN EMAIL FIELDS RETURNING Contact(Email WHERE Account.Name = 'Acme Corporation' ORDER BY Email LIMIT 1)`, "Email", []string{"Contact:ada@example.com"}},
		{"overall limit", `FIND {example} IN EMAIL FIELDS RETURNING Contact(Email), Lead(Email) LIMIT 3`, "Email", nil /* length checked below */},
		{"ids only", `FIND {Acme Corporation} IN NAME FIELDS RETURNING Account`, "Id", []string{"Account:001Hs0000000001IAA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := db.Search(tt.given, "66.0")
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "overall limit" {
				if len(recs) != 3 {
					t.Fatalf("got %d records", len(recs))
				}
				return
			}
			got := recordTypesAndNames(t, recs, tt.field)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	recs, _ := db.Search("FIND {Acme Corporation} IN NAME FIELDS RETURNING Account", "66.0")
	got, _ := json.Marshal(recs)
	if want := `[{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/001Hs0000000001IAA"},"Id":"001Hs0000000001IAA"}]`; string(got) != want {
		t.Fatalf("JSON %s", got)
	}
}

func TestSearchErrors(t *testing.T) {
	db := newSeededDB(t)
	tests := []struct {
		name, given, wantCode, wantMsg string
	}{
		{"empty", "FIND {} RETURNING Contact", "MALFORMED_SEARCH", "No search term found. The search term must be enclosed in braces."},
		{"unknown object", "FIND {a} RETURNING Foo(Id)", "INVALID_TYPE",
			"\nFIND {a} RETURNING Foo(Id)\n                   ^\nERROR at Row:1:Column:20\nsObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."},
		{"unknown field", "FIND {a} RETURNING Contact(Foo)", "INVALID_FIELD",
			"\nFIND {a} RETURNING Contact(Foo)\n                           ^\nERROR at Row:1:Column:28\nNo such column 'Foo' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Search(tt.given, "")
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.wantCode || e.Message != tt.wantMsg || e.Status != 400 {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestParameterizedSearch(t *testing.T) {
	db := newSeededDB(t)
	recs, err := db.ParameterizedSearch(ParamSearch{
		Q: "Byron", In: "name", Fields: []string{"Id"},
		SObjects: []ParamSObject{{Name: "Contact", Fields: []string{"Name", "Account.Name"}, Where: "Email != null", Limit: 5}, {Name: "Lead"}},
	}, "66.0")
	if err != nil {
		t.Fatal(err)
	}
	if got := recordTypesAndNames(t, recs, "Name"); strings.Join(got, "|") != "Contact:Ada Byron" {
		t.Fatalf("got %q", got)
	}
	if _, err := db.ParameterizedSearch(ParamSearch{Q: "x", In: "BODY"}, ""); !errors.Is(err, &Error{Code: "INVALID_SEARCH"}) {
		t.Fatalf("bad in: %v", err)
	}
	if _, err := db.ParameterizedSearch(ParamSearch{Q: ""}, ""); !errors.Is(err, &Error{Code: CodeMalformedSearch}) {
		t.Fatalf("empty q: %v", err)
	}
	if _, err := db.ParameterizedSearch(ParamSearch{Q: "x", SObjects: []ParamSObject{{Name: "Foo"}}}, ""); !errors.Is(err, &Error{Code: CodeInvalidType}) {
		t.Fatalf("bad object: %v", err)
	}
	recs, err = db.ParameterizedSearch(ParamSearch{Q: "example", In: "EMAIL", OverallLimit: 7}, "")
	if err != nil || len(recs) != 7 {
		t.Fatalf("overall limit: %d %v", len(recs), err)
	}
}
