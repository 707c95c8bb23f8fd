package blocks

import (
	"errors"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
)

func vars(t *testing.T, kv ...any) map[string]variable {
	t.Helper()
	out := map[string]variable{}
	for i := 0; i < len(kv); i += 2 {
		name := kv[i].(string)
		switch v := kv[i+1].(type) {
		case string:
			out[name] = variable{kind: varString, text: v}
		case bool:
			if v {
				out[name] = variable{kind: varBool, text: "true"}
			} else {
				out[name] = variable{kind: varBool, text: "false"}
			}
		case number:
			out[name] = variable{kind: varNumber, text: string(v)}
		default:
			t.Fatalf("bad test variable %v", v)
		}
	}
	return out
}

type number string

func TestRenderStatement(t *testing.T) {
	tests := []struct {
		name    string
		sosl    bool
		tmpl    string
		vars    []any
		want    string
		wantErr string
	}{
		{name: "no placeholders", tmpl: "SELECT Id FROM Contact", want: "SELECT Id FROM Contact"},
		{name: "string literal", tmpl: "SELECT Id FROM Contact WHERE Phone = '$(phone)'",
			vars: []any{"phone", "+1 415 555 0100"}, want: "SELECT Id FROM Contact WHERE Phone = '+1 415 555 0100'"},
		{name: "quote in value", tmpl: "SELECT Id FROM Contact WHERE LastName = '$(n)'",
			vars: []any{"n", "O'Brien"}, want: `SELECT Id FROM Contact WHERE LastName = 'O\'Brien'`},
		{name: "hostile OR", tmpl: "SELECT Id FROM Contact WHERE Name = '$(n)'",
			vars: []any{"n", "' OR Name != '"}, want: `SELECT Id FROM Contact WHERE Name = '\' OR Name != \''`},
		{name: "hostile backslash quote", tmpl: "SELECT Id FROM Contact WHERE Name = '$(n)'",
			vars: []any{"n", `\' OR 1=1`}, want: `SELECT Id FROM Contact WHERE Name = '\\\' OR 1=1'`},
		{name: "backslash alone", tmpl: "SELECT Id FROM Contact WHERE Name = '$(n)'",
			vars: []any{"n", `\`}, want: `SELECT Id FROM Contact WHERE Name = '\\'`},
		{name: "percent in equality stays", tmpl: "SELECT Id FROM Contact WHERE Name = '$(n)'",
			vars: []any{"n", "100%"}, want: "SELECT Id FROM Contact WHERE Name = '100%'"},
		{name: "LIKE escapes wildcards of value, keeps template's", tmpl: "SELECT Id FROM Account WHERE Name LIKE '$(p)%'",
			vars: []any{"p", "50%_off"}, want: `SELECT Id FROM Account WHERE Name LIKE '50\%\_off%'`},
		{name: "like lower case and NOT", tmpl: "SELECT Id FROM Account WHERE NOT Name like '%$(p)%'",
			vars: []any{"p", "%"}, want: `SELECT Id FROM Account WHERE NOT Name like '%\%%'`},
		{name: "literal after LIKE literal is not LIKE", tmpl: "SELECT Id FROM Account WHERE Name LIKE 'A%' AND Site = '$(s)'",
			vars: []any{"s", "5%"}, want: "SELECT Id FROM Account WHERE Name LIKE 'A%' AND Site = '5%'"},
		{name: "IN list", tmpl: "SELECT Id FROM Lead WHERE Status IN ('$(a)', '$(b)')",
			vars: []any{"a", "Open", "b", "x'y"}, want: `SELECT Id FROM Lead WHERE Status IN ('Open', 'x\'y')`},
		{name: "escaped quote in template literal", tmpl: `SELECT Id FROM Contact WHERE LastName = 'O\'$(n)'`,
			vars: []any{"n", "Brien"}, want: `SELECT Id FROM Contact WHERE LastName = 'O\'Brien'`},
		{name: "escaped backslash before closing quote", tmpl: `SELECT Id FROM Contact WHERE A = 'x\\' AND B = $(n)`,
			vars: []any{"n", number("5")}, want: `SELECT Id FROM Contact WHERE A = 'x\\' AND B = 5`},
		{name: "placeholder-like text in value is not expanded", tmpl: "SELECT Id FROM Contact WHERE Name = '$(n)'",
			vars: []any{"n", "$(m)", "m", "x"}, want: "SELECT Id FROM Contact WHERE Name = '$(m)'"},
		{name: "dollar escape", tmpl: "SELECT Id FROM Contact WHERE Name = '$$(n)'", want: "SELECT Id FROM Contact WHERE Name = '$(n)'"},
		{name: "lone dollar", tmpl: "SELECT Id FROM Contact WHERE Name = 'US$ 5'", want: "SELECT Id FROM Contact WHERE Name = 'US$ 5'"},
		{name: "newline and control chars", tmpl: "SELECT Id FROM Case WHERE Subject = '$(s)'",
			vars: []any{"s", "a\nb\x01"}, want: `SELECT Id FROM Case WHERE Subject = 'a\nb\u0001'`},
		{name: "dotted variable name", tmpl: "SELECT Id FROM Contact WHERE Email = '$(item.email)'",
			vars: []any{"item.email", "ada@example.com"}, want: "SELECT Id FROM Contact WHERE Email = 'ada@example.com'"},

		{name: "bare number variable", tmpl: "SELECT Id FROM Account WHERE NumberOfEmployees > $(n)",
			vars: []any{"n", number("250")}, want: "SELECT Id FROM Account WHERE NumberOfEmployees > 250"},
		{name: "bare numeric string", tmpl: "SELECT Id FROM Account WHERE AnnualRevenue >= $(n)",
			vars: []any{"n", "-1.5"}, want: "SELECT Id FROM Account WHERE AnnualRevenue >= -1.5"},
		{name: "bare date", tmpl: "SELECT Id FROM Task WHERE ActivityDate = $(d)",
			vars: []any{"d", "2024-02-29"}, want: "SELECT Id FROM Task WHERE ActivityDate = 2024-02-29"},
		{name: "bare datetime Z", tmpl: "SELECT Id FROM Case WHERE CreatedDate > $(d)",
			vars: []any{"d", "2024-01-02T03:04:05Z"}, want: "SELECT Id FROM Case WHERE CreatedDate > 2024-01-02T03:04:05Z"},
		{name: "bare datetime offset", tmpl: "SELECT Id FROM Case WHERE CreatedDate > $(d)",
			vars: []any{"d", "2024-01-02T03:04:05-08:00"}, want: "SELECT Id FROM Case WHERE CreatedDate > 2024-01-02T03:04:05-08:00"},
		{name: "bare boolean", tmpl: "SELECT Id FROM Contact WHERE DoNotCall = $(b)",
			vars: []any{"b", true}, want: "SELECT Id FROM Contact WHERE DoNotCall = true"},
		{name: "bare boolean string", tmpl: "SELECT Id FROM Contact WHERE DoNotCall = $(b)",
			vars: []any{"b", "FALSE"}, want: "SELECT Id FROM Contact WHERE DoNotCall = false"},
		{name: "bare LIMIT", tmpl: "SELECT Id FROM Contact LIMIT $(n)",
			vars: []any{"n", number("5")}, want: "SELECT Id FROM Contact LIMIT 5"},

		{name: "bare text refused", tmpl: "SELECT Id FROM Contact WHERE Name = $(n)",
			vars: []any{"n", "x OR Name != null"}, wantErr: `variable "n" stands outside quotes`},
		{name: "bare injection refused", tmpl: "SELECT Id FROM Contact WHERE Age__c = $(n)",
			vars: []any{"n", "1 OR Id != null"}, wantErr: `variable "n" stands outside quotes`},
		{name: "bare bad date", tmpl: "SELECT Id FROM Task WHERE ActivityDate = $(d)",
			vars: []any{"d", "2023-02-29"}, wantErr: `variable "d" stands outside quotes`},
		{name: "bare exponent refused", tmpl: "SELECT Id FROM Account WHERE AnnualRevenue > $(n)",
			vars: []any{"n", number("1e5")}, wantErr: `variable "n" stands outside quotes`},
		{name: "bare empty refused", tmpl: "SELECT Id FROM Account WHERE AnnualRevenue > $(n)",
			vars: []any{"n", ""}, wantErr: `variable "n" stands outside quotes`},
		{name: "missing variable", tmpl: "SELECT Id FROM Contact WHERE Phone = '$(phone)'",
			wantErr: `query uses variable "phone", which is not in variables`},
		{name: "malformed placeholder", tmpl: "SELECT Id FROM Contact WHERE Phone = '$(ph one)'",
			wantErr: "malformed placeholder at offset 38 of the query"},
		{name: "unclosed placeholder", tmpl: "SELECT Id FROM Contact WHERE Phone = '$(phone'",
			wantErr: "malformed placeholder"},
		{name: "unterminated literal", tmpl: "SELECT Id FROM Contact WHERE Phone = '$(p)",
			vars: []any{"p", "1"}, wantErr: "unterminated string literal starting at offset 37"},
		{name: "unterminated by trailing backslash", tmpl: `SELECT Id FROM Contact WHERE Phone = 'abc\`,
			wantErr: "unterminated string literal"},

		{name: "sosl find braces", sosl: true, tmpl: "FIND {$(q)} IN PHONE FIELDS RETURNING Contact(Id)",
			vars: []any{"q", "+1 415"}, want: `FIND {\+1 415} IN PHONE FIELDS RETURNING Contact(Id)`},
		{name: "sosl hostile brace", sosl: true, tmpl: "FIND {$(q)} RETURNING Contact(Id)",
			vars: []any{"q", "} RETURNING User(Id) //"}, want: `FIND {\} RETURNING User\(Id\) //} RETURNING Contact(Id)`},
		{name: "sosl operators escaped", sosl: true, tmpl: "find {$(q)} RETURNING Contact(Id)",
			vars: []any{"q", `a* OR "b" \`}, want: `find {"a\* OR \"b\" \\"} RETURNING Contact(Id)`},
		{name: "sosl phrase in template", sosl: true, tmpl: `FIND {"$(q)" OR $(q)} RETURNING Contact(Id)`,
			vars: []any{"q", "salt and pepper"}, want: `FIND {"salt and pepper" OR "salt and pepper"} RETURNING Contact(Id)`},
		{name: "sosl brace ends the term even inside a phrase", sosl: true, tmpl: `FIND {"a } b $(q)"} RETURNING Contact(Id)`,
			vars: []any{"q", `"x"`}, wantErr: `variable "q" stands outside quotes`},
		{name: "sosl where literal and like", sosl: true,
			tmpl: "FIND {$(q)} RETURNING Contact(Id WHERE LastName = '$(l)' AND Email LIKE '$(e)%')",
			vars: []any{"q", "Ada", "l", "O'Brien", "e", "a_b"},
			want: `FIND {Ada} RETURNING Contact(Id WHERE LastName = 'O\'Brien' AND Email LIKE 'a\_b%')`},
		{name: "sosl template escaped brace", sosl: true, tmpl: `FIND {a\}$(q)} RETURNING Contact(Id)`,
			vars: []any{"q", "}"}, want: `FIND {a\}\}} RETURNING Contact(Id)`},
		{name: "sosl unterminated find", sosl: true, tmpl: "FIND {$(q) RETURNING Contact(Id)",
			vars: []any{"q", "x"}, wantErr: "unterminated FIND {...} term"},
		{name: "braces in soql are not FIND", tmpl: "SELECT Id FROM Contact WHERE Name = $(q)",
			vars: []any{"q", "{x}"}, wantErr: "stands outside quotes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderStatement(tt.tmpl, tt.sosl, vars(t, tt.vars...))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("renderStatement = %q, want error containing %q", got, tt.wantErr)
				}
				if !errors.Is(err, sfblocks.ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want INVALID_REQUEST containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("renderStatement: %v", err)
			}
			if got != tt.want {
				t.Errorf("renderStatement:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRenderStatementNeverLeaksValues(t *testing.T) {
	secret := "hunter2-VALUE"
	_, err := renderStatement("SELECT Id FROM Contact WHERE Name = $(n)", false, vars(t, "n", secret))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v must exist and not quote the value", err)
	}
}

func TestSubstituteText(t *testing.T) {
	vs := vars(t, "first", "Ada", "n", number("3"), "q", `O'Brien "x" \`)
	tests := []struct {
		name, given, want, wantErr string
	}{
		{name: "plain", given: "hello", want: "hello"},
		{name: "one", given: "Call from $(first)", want: "Call from Ada"},
		{name: "several and number", given: "$(first) called $(n) times", want: "Ada called 3 times"},
		{name: "no escaping", given: "$(q)", want: `O'Brien "x" \`},
		{name: "dollar escape", given: "costs $$(n)", want: "costs $(n)"},
		{name: "lone dollar", given: "US$ 5 $", want: "US$ 5 $"},
		{name: "missing", given: "$(nope)", wantErr: `field "Subject" uses variable "nope"`},
		{name: "malformed", given: "price $(5)", wantErr: `malformed placeholder at offset 6 of the field "Subject"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := substituteText(tt.given, vs, `field "Subject"`)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("substituteText = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLiteralForms(t *testing.T) {
	tests := []struct {
		given        string
		number, date bool
		datetime     bool
	}{
		{given: "0", number: true},
		{given: "-12.50", number: true},
		{given: "+3", number: true},
		{given: "1.", number: false},
		{given: ".5", number: false},
		{given: "1e3", number: false},
		{given: "2024-02-29", date: true},
		{given: "2023-02-29"},
		{given: "2000-02-29", date: true},
		{given: "1900-02-29"},
		{given: "2024-13-01"},
		{given: "2024-04-31"},
		{given: "2024-1-01"},
		{given: "2024-01-01T00:00:00Z", datetime: true},
		{given: "2024-01-01T23:59:59+05:30", datetime: true},
		{given: "2024-01-01T24:00:00Z"},
		{given: "2024-01-01T00:00:00"},
		{given: "2024-01-01T00:00:00.000Z"},
		{given: "2024-01-01 00:00:00Z"},
	}
	for _, tt := range tests {
		if got := isSOQLNumber(tt.given); got != tt.number {
			t.Errorf("isSOQLNumber(%q) = %v", tt.given, got)
		}
		if got := isDate(tt.given); got != tt.date {
			t.Errorf("isDate(%q) = %v", tt.given, got)
		}
		if got := isDateTime(tt.given); got != tt.datetime {
			t.Errorf("isDateTime(%q) = %v", tt.given, got)
		}
	}
}
