package soql

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SELECT Id FROM Contact",
		"SELECT Id, Name, Account.Name FROM Contact WHERE (Phone = '1' OR MobilePhone = '2') AND IsDeleted = false ORDER BY Name DESC NULLS LAST LIMIT 5 OFFSET 2",
		"SELECT COUNT() FROM Case WHERE CreatedDate > 2024-01-02T03:04:05Z AND ActivityDate = LAST_N_DAYS:7",
		"SELECT Id FROM Contact WHERE LastName LIKE 'O\\'Br\\%en%' AND Name NOT IN ('a','b')",
		"SELECT Id FROM Contact WHERE Name = 'x\\q'",
		"FIND {Ada* AND \"joe smith\" AND NOT (x OR y)} IN NAME FIELDS RETURNING Contact(Id, Name WHERE Phone != null ORDER BY Name LIMIT 3), Lead LIMIT 10",
		"FIND {a\\-b} RETURNING Account",
		"SELECT Id FROM",
		"'",
		"FIND {",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (any, error){
			func(s string) (any, error) { return Parse(s) },
			func(s string) (any, error) { return ParseSearch(s) },
			func(s string) (any, error) { return ParseSearchTerm(s) },
		} {
			v, err := parse(s)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error is %T, want *Error: %v", err, err)
				}
				_ = e.Message()
				continue
			}
			if v == nil {
				t.Fatal("nil result without error")
			}
		}
	})
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{
		"", "O'Brien", `back\slash`, "100%_done", "line\nbreak\ttab\r\b\f", "\x00\x7f\ufffd", "quote\"d",
		"tom and jerry", "x OR y", "not", "{curly} [sq] (p) ^~*:?!&|+-", "  spaced  ", "é漢字😀", "a\u2028b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("escape helpers take valid UTF-8")
		}
		checkSOQLEquals(t, s)
		checkSOQLLike(t, s)
		if strings.TrimSpace(s) != "" { // an empty search term is rejected by Salesforce too
			checkSOSL(t, s)
		}
	})
}

func checkSOQLEquals(t *testing.T, s string) {
	t.Helper()
	stmt := "SELECT Id FROM Contact WHERE LastName = '" + salesforce.EscapeSOQLString(s) + "'"
	q, err := Parse(stmt)
	if err != nil {
		t.Fatalf("EscapeSOQLString(%q): %v", s, err)
	}
	c, ok := q.Where.(*Comparison)
	if !ok {
		t.Fatalf("EscapeSOQLString(%q): WHERE is %T, want one *Comparison", s, q.Where)
	}
	if c.Op != OpEq || c.Value.Kind != KindString || c.Value.Str != s || c.Field.String() != "LastName" {
		t.Fatalf("EscapeSOQLString(%q): got %v %v %q", s, c.Field, c.Op, c.Value.Str)
	}
}

func checkSOQLLike(t *testing.T, s string) {
	t.Helper()
	stmt := "SELECT Id FROM Contact WHERE LastName LIKE '" + salesforce.EscapeSOQLLike(s) + "'"
	q, err := Parse(stmt)
	if err != nil {
		t.Fatalf("EscapeSOQLLike(%q): %v", s, err)
	}
	c, ok := q.Where.(*Comparison)
	if !ok || c.Op != OpLike || c.Pattern == nil {
		t.Fatalf("EscapeSOQLLike(%q): WHERE is %#v, want one LIKE", s, q.Where)
	}
	lit, ok := c.Pattern.Literal()
	if !ok || lit != s {
		t.Fatalf("EscapeSOQLLike(%q): pattern %#v is not the literal text", s, c.Pattern)
	}
	if !c.Pattern.Match(s) {
		t.Fatalf("EscapeSOQLLike(%q): pattern does not match its own text", s)
	}
}

func checkSOSL(t *testing.T, s string) {
	t.Helper()
	stmt := "FIND {" + salesforce.EscapeSOSL(s) + "} IN ALL FIELDS RETURNING Contact(Id)"
	sr, err := ParseSearch(stmt)
	if err != nil {
		t.Fatalf("EscapeSOSL(%q) = %q: %v", s, salesforce.EscapeSOSL(s), err)
	}
	term, ok := sr.Term.(*SearchTerm)
	if !ok {
		t.Fatalf("EscapeSOSL(%q) = %q: term is %T, want one *SearchTerm", s, salesforce.EscapeSOSL(s), sr.Term)
	}
	if term.Text != s || term.Wildcard {
		t.Fatalf("EscapeSOSL(%q) = %q: term %q wildcard=%v", s, salesforce.EscapeSOSL(s), term.Text, term.Wildcard)
	}
	if len(sr.Returning) != 1 || sr.Returning[0].Object != "Contact" || sr.In != "ALL" {
		t.Fatalf("EscapeSOSL(%q): rest of the statement misparsed: %+v", s, sr)
	}
}
