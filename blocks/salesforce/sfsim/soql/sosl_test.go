package soql

import (
	"errors"
	"testing"
)

func TestParseSearch(t *testing.T) {
	s, err := ParseSearch(`find {Ada\-Lovelace} in Phone fields returning Contact(Id, Name where Email != null order by Name desc limit 2), Lead, Account(Id) limit 20`)
	if err != nil {
		t.Fatal(err)
	}
	term, ok := s.Term.(*SearchTerm)
	if !ok || term.Text != "Ada-Lovelace" || term.Wildcard || term.Phrase {
		t.Fatalf("term %#v", s.Term)
	}
	if s.In != "PHONE" || !s.HasLimit || s.Limit != 20 || len(s.Returning) != 3 {
		t.Fatalf("search %+v", s)
	}
	r := s.Returning[0]
	if r.Object != "Contact" || len(r.Fields) != 2 || r.Where == nil || len(r.OrderBy) != 1 || !r.OrderBy[0].Desc || r.Limit != 2 || !r.HasLimit {
		t.Fatalf("returning %+v", r)
	}
	if s.Returning[1].Object != "Lead" || len(s.Returning[1].Fields) != 0 {
		t.Fatalf("returning %+v", s.Returning[1])
	}
}

// termString renders a search expression for comparison in tests.
func termString(e SearchExpr) string {
	switch n := e.(type) {
	case *SearchTerm:
		s := n.Text
		if n.Phrase {
			s = `"` + s + `"`
		}
		if n.Wildcard {
			s += "~w"
		}
		return "[" + s + "]"
	case *SearchAnd:
		return "(" + termString(n.L) + " AND " + termString(n.R) + ")"
	case *SearchOr:
		return "(" + termString(n.L) + " OR " + termString(n.R) + ")"
	case *SearchAndNot:
		return "(" + termString(n.L) + " ANDNOT " + termString(n.R) + ")"
	}
	return "?"
}

func TestParseSearchTerm(t *testing.T) {
	tests := []struct {
		given string
		want  string
	}{
		{"joe smith", "[joe smith]"},
		{"  joe  ", "[  joe  ]"},
		{`Joe Sm?th*`, "[Joe Sm?th*~w]"},
		{`a\*b\?`, "[a*b?]"},
		{`"joe and mary"`, `["joe and mary"]`},
		{`"and" or "or"`, `(["and"] OR ["or"])`},
		{`a AND b or c`, "(([a] AND [b]) OR [c])"},
		{`a and not (b OR c)`, "([a] ANDNOT ([b] OR [c]))"},
		{`x "y z" w`, `(([x] AND ["y z"]) AND [w])`},
		{`\{\}\[\]\(\)\^\~\:\\\"\'\+\-\&\|\!`, `[{}[]()^~:\"'+-&|!]`},
	}
	for _, tt := range tests {
		t.Run(tt.given, func(t *testing.T) {
			e, err := ParseSearchTerm(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			if got := termString(e); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseSearchErrors(t *testing.T) {
	tests := []struct {
		name    string
		given   string
		wantMsg string
	}{
		{"empty braces", "FIND {} RETURNING Contact", "No search term found. The search term must be enclosed in braces."},
		{"blank braces", "FIND {  } RETURNING Contact", "No search term found. The search term must be enclosed in braces."},
		{"no braces", "FIND ada RETURNING Contact", "No search term found. The search term must be enclosed in braces."},
		{"unclosed braces", "FIND {ada RETURNING Contact", "No search term found. The search term must be enclosed in braces."},
		{"not find", "SELECT Id FROM Contact", "\nSELECT Id FROM Contact\n^\nERROR at Row:1:Column:1\nunexpected token: 'SELECT'"},
		{"unescaped reserved", "FIND {a-b}", "\nFIND {a-b}\n       ^\nERROR at Row:1:Column:8\nunexpected token: '-' (reserved characters in a search term must be escaped with a backslash)"},
		{"dangling operator", "FIND {a AND}", "\nFIND {a AND}\n           ^\nERROR at Row:1:Column:12\nunexpected token: '}'"},
		{"bad group", "FIND {a} IN BODY FIELDS", "\nFIND {a} IN BODY FIELDS\n            ^\nERROR at Row:1:Column:13\nunexpected token: 'BODY'"},
		{"trailing", "FIND {a} RETURNING Contact(Id) FOO", "\nFIND {a} RETURNING Contact(Id) FOO\n                               ^\nERROR at Row:1:Column:32\nunexpected token: 'FOO'"},
		{"unclosed phrase", `FIND {"a b}`, "\nFIND {\"a b}\n      ^\nERROR at Row:1:Column:7\nunmatched quote in search term"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSearch(tt.given)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Code != CodeMalformedSearch || e.Message() != tt.wantMsg {
				t.Fatalf("got %s %q, want %q", e.Code, e.Message(), tt.wantMsg)
			}
		})
	}
}

func TestSearchMatch(t *testing.T) {
	values := []string{"Ada Byron", "ada@example.com", "Analytical Engines Ltd"}
	phones := []string{"+1 415 555 0100"}
	tests := []struct {
		given     string
		wantText  bool
		wantPhone bool
	}{
		{"ada", true, false},
		{"ADA byron", true, false},
		{"byron ada", true, false},
		{`"byron ada"`, false, false},
		{`"ada byron"`, true, false},
		{"ada@example.com", true, false},
		{"By*", true, false},
		{"B?ron", true, false},
		{"B?n", false, false},
		{"4155550100", false, true},
		{`\+1 \(415\) 555\-0100`, false, true},
		{"5550100", false, true},
		{"12", false, false},
		{"grace", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.given, func(t *testing.T) {
			e, err := ParseSearchTerm(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			gotText := EvalSearch(e, func(st *SearchTerm) bool { return st.MatchText(values) })
			gotPhone := EvalSearch(e, func(st *SearchTerm) bool { return st.MatchPhone(phones) })
			if gotText != tt.wantText || gotPhone != tt.wantPhone {
				t.Fatalf("text %v phone %v, want %v %v", gotText, gotPhone, tt.wantText, tt.wantPhone)
			}
		})
	}
	e, _ := ParseSearchTerm("ada AND NOT grace OR zzz")
	if !EvalSearch(e, func(st *SearchTerm) bool { return st.MatchText(values) }) {
		t.Fatal("and-not/or evaluation")
	}
}
