package soql

import (
	"errors"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		given string
		check func(t *testing.T, q *Query)
	}{
		{
			name:  "fields and relationship paths",
			given: "select Id, name, Account.Name, Account.Owner.Name from contact",
			check: func(t *testing.T, q *Query) {
				if q.Object != "contact" || len(q.Fields) != 4 || q.Fields[3].String() != "Account.Owner.Name" || q.Where != nil {
					t.Fatalf("got %+v", q)
				}
			},
		},
		{
			name:  "count",
			given: "SELECT COUNT() FROM Case",
			check: func(t *testing.T, q *Query) {
				if !q.Count || len(q.Fields) != 0 || q.CountPos != 7 {
					t.Fatalf("got %+v", q)
				}
			},
		},
		{
			name:  "escaped string literal",
			given: `SELECT Id FROM Contact WHERE LastName = 'O\'Brien \\ \n\N\t\"\u00e9'`,
			check: func(t *testing.T, q *Query) {
				c := q.Where.(*Comparison)
				if c.Op != OpEq || c.Value.Kind != KindString || c.Value.Str != "O'Brien \\ \n\n\t\"é" {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{
			name:  "like with escaped wildcards",
			given: `SELECT Id FROM Account WHERE Name LIKE 'Ter\%%'`,
			check: func(t *testing.T, q *Query) {
				c := q.Where.(*Comparison)
				if c.Op != OpLike || c.Pattern.Text != "Ter%%" || len(c.Pattern.Elems) != 2 || c.Pattern.Elems[1].Kind != LikeAny {
					t.Fatalf("got %+v", c.Pattern)
				}
				if _, lit := c.Pattern.Literal(); lit {
					t.Fatal("pattern with % must not be literal")
				}
			},
		},
		{
			name:  "and or not nesting",
			given: "SELECT Id FROM Contact WHERE (A = 1 OR B = 2) AND NOT C = null AND D IN ('x', 'y') AND E NOT IN (1)",
			check: func(t *testing.T, q *Query) {
				a, ok := q.Where.(*And)
				if !ok || len(a.Terms) != 4 {
					t.Fatalf("got %#v", q.Where)
				}
				if o, ok := a.Terms[0].(*Or); !ok || len(o.Terms) != 2 {
					t.Fatalf("first term %#v", a.Terms[0])
				}
				if n, ok := a.Terms[1].(*Not); !ok || n.X.(*Comparison).Value.Kind != KindNull {
					t.Fatalf("second term %#v", a.Terms[1])
				}
				if c := a.Terms[2].(*Comparison); c.Op != OpIn || len(c.Values) != 2 || c.Values[1].Str != "y" {
					t.Fatalf("third term %#v", c)
				}
				if c := a.Terms[3].(*Comparison); c.Op != OpNotIn || c.Values[0].Num != 1 {
					t.Fatalf("fourth term %#v", c)
				}
			},
		},
		{
			name:  "literals",
			given: "SELECT Id FROM Task WHERE A = 2024-01-02 AND B > 2024-01-02T03:04:05Z AND C <= 2024-01-02T03:04:05.5+02:00 AND D = -1.5 AND E = TRUE AND F = last_n_days:30 AND G <> today",
			check: func(t *testing.T, q *Query) {
				terms := q.Where.(*And).Terms
				want := []Kind{KindDate, KindDateTime, KindDateTime, KindNumber, KindBool, KindDateFunc, KindDateFunc}
				for i, k := range want {
					if got := terms[i].(*Comparison).Value.Kind; got != k {
						t.Errorf("term %d kind %v, want %v", i, got, k)
					}
				}
				if v := terms[2].(*Comparison).Value.Time; !v.Equal(time.Date(2024, 1, 2, 1, 4, 5, 5e8, time.UTC)) {
					t.Errorf("datetime %v", v)
				}
				if v := terms[5].(*Comparison).Value; v.Func != "LAST_N_DAYS" || v.N != 30 {
					t.Errorf("date func %+v", v)
				}
				if terms[6].(*Comparison).Op != OpNe {
					t.Error("<> is not !=")
				}
			},
		},
		{
			name:  "order limit offset",
			given: "SELECT Id FROM Contact ORDER BY LastName, FirstName DESC, Email ASC NULLS LAST LIMIT 10 OFFSET 20",
			check: func(t *testing.T, q *Query) {
				if len(q.OrderBy) != 3 || q.OrderBy[0].Desc || q.OrderBy[0].NullsLast || !q.OrderBy[1].Desc || !q.OrderBy[1].NullsLast || !q.OrderBy[2].NullsLast {
					t.Fatalf("order %+v", q.OrderBy)
				}
				if !q.HasLimit || q.Limit != 10 || q.Offset != 20 {
					t.Fatalf("limit/offset %+v", q)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.given)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, q)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		given   string
		wantMsg string
	}{
		{
			name:    "trailing token",
			given:   "SELECT Id FROM Contact FOO",
			wantMsg: "\nSELECT Id FROM Contact FOO\n                       ^\nERROR at Row:1:Column:24\nunexpected token: 'FOO'",
		},
		{
			name:    "missing object",
			given:   "SELECT Id FROM",
			wantMsg: "\nSELECT Id FROM\n              ^\nERROR at Row:1:Column:15\nunexpected token: '<EOF>'",
		},
		{
			name:    "mixed and or",
			given:   "SELECT Id FROM Contact\nWHERE A = 1 AND B = 2 OR C = 3",
			wantMsg: "\nWHERE A = 1 AND B = 2 OR C = 3\n                      ^\nERROR at Row:2:Column:23\nunexpected token: 'OR'",
		},
		{
			name:    "unescaped quote",
			given:   "SELECT Id FROM Contact WHERE LastName = 'O'Brien'",
			wantMsg: "\nSELECT Id FROM Contact WHERE LastName = 'O'Brien'\n                                           ^\nERROR at Row:1:Column:44\nunexpected token: 'Brien'",
		},
		{
			name:    "bad escape",
			given:   `SELECT Id FROM Contact WHERE LastName = 'a\qb'`,
			wantMsg: "\nSELECT Id FROM Contact WHERE LastName = 'a\\qb'\n                                        ^\nERROR at Row:1:Column:41\nInvalid string literal 'a\\qb'. Illegal character sequence '\\q' in string literal.",
		},
		{
			name:    "like escape outside like",
			given:   `SELECT Id FROM Contact WHERE LastName = '100\%'`,
			wantMsg: "\nSELECT Id FROM Contact WHERE LastName = '100\\%'\n                                        ^\nERROR at Row:1:Column:41\nInvalid string literal '100\\%'. Illegal character sequence '\\%' in string literal.",
		},
		{
			name:    "unterminated string",
			given:   "SELECT Id FROM Contact WHERE LastName = 'abc",
			wantMsg: "\nSELECT Id FROM Contact WHERE LastName = 'abc\n                                        ^\nERROR at Row:1:Column:41\nunexpected token: '<EOF>'",
		},
		{
			name:    "double quotes are not strings",
			given:   `SELECT Id FROM Contact WHERE LastName = "x"`,
			wantMsg: "\nSELECT Id FROM Contact WHERE LastName = \"x\"\n                                        ^\nERROR at Row:1:Column:41\nunexpected token: '\"'",
		},
		{
			name:    "reserved word as field",
			given:   "SELECT Id, FROM Contact",
			wantMsg: "\nSELECT Id, FROM Contact\n           ^\nERROR at Row:1:Column:12\nunexpected token: 'FROM'",
		},
		{
			name:    "negative limit",
			given:   "SELECT Id FROM Contact LIMIT -1",
			wantMsg: "\nSELECT Id FROM Contact LIMIT -1\n                             ^\nERROR at Row:1:Column:30\nunexpected token: '-1'",
		},
		{
			name:    "like needs a string",
			given:   "SELECT Id FROM Contact WHERE Name LIKE 5",
			wantMsg: "\nSELECT Id FROM Contact WHERE Name LIKE 5\n                                       ^\nERROR at Row:1:Column:40\nunexpected token: '5'",
		},
		{
			name:    "bad unicode escape",
			given:   `SELECT Id FROM Contact WHERE Name = '\u12'`,
			wantMsg: "\nSELECT Id FROM Contact WHERE Name = '\\u12'\n                                    ^\nERROR at Row:1:Column:37\nInvalid string literal '\\u12'. Illegal character sequence '\\u12' in string literal.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.given)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error = %v, want *Error", err)
			}
			if e.Code != CodeMalformedQuery {
				t.Errorf("code %s", e.Code)
			}
			if e.Message() != tt.wantMsg {
				t.Errorf("message\n got %q\nwant %q", e.Message(), tt.wantMsg)
			}
		})
	}
}

func TestLikeMatch(t *testing.T) {
	tests := []struct {
		pattern string
		given   string
		want    bool
	}{
		{"Ter%", "terrific", true},
		{"Ter%", "Ter", true},
		{"Ter%", "xTer", false},
		{`Ter\%`, "Ter%", true},
		{`Ter\%`, "Terx", false},
		{`Ter\%%`, "ter%abc", true},
		{"a_c", "ABC", true},
		{"a_c", "ac", false},
		{`a\_c`, "abc", false},
		{`a\_c`, "a_c", true},
		{"%o%o%", "foo boo", true},
		{"%b%", "abc", true},
		{"%%", "", true},
		{"É%", "ecole", false},
		{"é%", "École", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.given, func(t *testing.T) {
			q, err := Parse("SELECT Id FROM Account WHERE Name LIKE '" + tt.pattern + "'")
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Where.(*Comparison).Pattern.Match(tt.given); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLikeMatchCase: the case-sensitive matcher (unique case-sensitive
// fields) agrees with Match except on case.
func TestLikeMatchCase(t *testing.T) {
	tests := []struct {
		pattern, given string
		want           bool
	}{
		{"Job%", "Job-1", true},
		{"Job%", "job-1", false},
		{"%-a", "x-a", true},
		{"%-a", "x-A", false},
		{"j_b", "job", true},
		{"j_b", "JOB", false},
		{`a\_c`, "a_c", true},
		{"é%", "École", false},
		{"%", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.given, func(t *testing.T) {
			q, err := Parse("SELECT Id FROM Account WHERE Name LIKE '" + tt.pattern + "'")
			if err != nil {
				t.Fatal(err)
			}
			p := q.Where.(*Comparison).Pattern
			if got := p.MatchCase(tt.given); got != tt.want {
				t.Fatalf("MatchCase = %v, want %v", got, tt.want)
			}
			if tt.want && !p.Match(tt.given) {
				t.Fatal("an exact match must also match ignoring case")
			}
			// A pattern built without its matchers compiles them on demand.
			bare := &LikePattern{Text: p.Text, Elems: p.Elems}
			if bare.MatchCase(tt.given) != tt.want {
				t.Fatal("uncompiled pattern disagrees")
			}
		})
	}
}

func TestDateRange(t *testing.T) {
	now := time.Date(2024, 3, 10, 15, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2024, 3, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		given      Literal
		start, end time.Time
	}{
		{Literal{Kind: KindDateFunc, Func: "TODAY"}, day(10), day(11)},
		{Literal{Kind: KindDateFunc, Func: "YESTERDAY"}, day(9), day(10)},
		{Literal{Kind: KindDateFunc, Func: "TOMORROW"}, day(11), day(12)},
		{Literal{Kind: KindDateFunc, Func: "LAST_N_DAYS", N: 7}, day(3), day(11)},
		{Literal{Kind: KindDateFunc, Func: "NEXT_N_DAYS", N: 2}, day(11), day(13)},
	}
	for _, tt := range tests {
		t.Run(tt.given.Func, func(t *testing.T) {
			s, e, ok := tt.given.DateRange(now)
			if !ok || !s.Equal(tt.start) || !e.Equal(tt.end) {
				t.Fatalf("got %v..%v ok=%v", s, e, ok)
			}
		})
	}
}
