package blocks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
)

func TestBuildSOQL(t *testing.T) {
	tests := []struct {
		name    string
		given   string // the structured part of a search job
		want    string
		wantErr string
	}{
		{name: "fields only", given: `{"object":"Contact","fields":["Id","Name"]}`,
			want: "SELECT Id, Name FROM Contact"},
		{name: "relationship path", given: `{"object":"Contact","fields":["Id","Account.Owner.Name"]}`,
			want: "SELECT Id, Account.Owner.Name FROM Contact"},
		{name: "equality string escaped", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"LastName","op":"=","value":"O'Brien"}]}`,
			want: `SELECT Id FROM Contact WHERE LastName = 'O\'Brien'`},
		{name: "hostile string", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"!=","value":"' OR Name != '"}]}`,
			want: `SELECT Id FROM Contact WHERE Name != '\' OR Name != \''`},
		{name: "numbers bools and ops", given: `{"object":"Account","fields":["Id"],"where":[
				{"field":"NumberOfEmployees","op":">=","value":10},
				{"field":"AnnualRevenue","op":"<","value":-2.5},
				{"field":"IsDeleted","op":"=","value":false}]}`,
			want: "SELECT Id FROM Account WHERE NumberOfEmployees >= 10 AND AnnualRevenue < -2.5 AND IsDeleted = false"},
		{name: "like keeps caller wildcards", given: `{"object":"Account","fields":["Id"],"where":[{"field":"Name","op":"like","value":"Acme%"}]}`,
			want: "SELECT Id FROM Account WHERE Name LIKE 'Acme%'"},
		{name: "like literal percent escape", given: `{"object":"Account","fields":["Id"],"where":[{"field":"Name","op":"LIKE","value":"50\\% off\\\\%"}]}`,
			want: `SELECT Id FROM Account WHERE Name LIKE '50\% off\\%'`},
		{name: "like quote escaped", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"LastName","op":"LIKE","value":"O'B%"}]}`,
			want: `SELECT Id FROM Contact WHERE LastName LIKE 'O\'B%'`},
		{name: "like variable matches literally", given: `{"object":"Account","fields":["Id"],"where":[{"field":"Name","op":"LIKE","value":"$(p)%_$$(x)"}],"variables":{"p":"50%_o'ff\\"}}`,
			want: `SELECT Id FROM Account WHERE Name LIKE '50\%\_o\'ff\\%_$(x)'`},
		{name: "in", given: `{"object":"Lead","fields":["Id"],"where":[{"field":"Status","op":"in","value":["Open","It's",3,true]}]}`,
			want: `SELECT Id FROM Lead WHERE Status IN ('Open', 'It\'s', 3, true)`},
		{name: "empty not_empty", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Email","op":"empty"},{"field":"Phone","op":"not_empty"}]}`,
			want: "SELECT Id FROM Contact WHERE Email = null AND Phone != null"},
		{name: "date types", given: `{"object":"Case","fields":["Id"],"where":[{"field":"CreatedDate","op":">","value":"2024-01-01T00:00:00Z","type":"datetime"},{"field":"ClosedDate__c","op":"in","value":["2024-01-01"],"type":"date"}]}`,
			want: "SELECT Id FROM Case WHERE CreatedDate > 2024-01-01T00:00:00Z AND ClosedDate__c IN (2024-01-01)"},
		{name: "variables in values", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Phone","op":"=","value":"$(phone)"},{"field":"Age__c","op":">","value":"$(n)"}],"variables":{"phone":"+1 '415'","n":7}}`,
			want: `SELECT Id FROM Contact WHERE Phone = '+1 \'415\'' AND Age__c > 7`},
		{name: "order by string", given: `{"object":"Contact","fields":["Id"],"order_by":"LastName desc nulls last, FirstName"}`,
			want: "SELECT Id FROM Contact ORDER BY LastName DESC NULLS LAST, FirstName"},
		{name: "order by array", given: `{"object":"Contact","fields":["Id"],"order_by":[{"field":"CreatedDate","direction":"DESC"},"Name ASC"],"limit":5}`,
			want: "SELECT Id FROM Contact ORDER BY CreatedDate DESC, Name LIMIT 5"},

		{name: "bad object", given: `{"object":"Contact; DROP","fields":["Id"]}`, wantErr: `object "Contact; DROP" is not a valid API name`},
		{name: "no fields", given: `{"object":"Contact"}`, wantErr: "the structured search needs fields"},
		{name: "bad field", given: `{"object":"Contact","fields":["Id","Name FROM User"]}`, wantErr: `fields[1] "Name FROM User" is not a valid field name`},
		{name: "bad path segment", given: `{"object":"Contact","fields":["Account..Name"]}`, wantErr: `fields[0] "Account..Name"`},
		{name: "too deep path", given: `{"object":"Contact","fields":["A.B.C.D.E.F.G"]}`, wantErr: `fields[0]`},
		{name: "bad where field", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"1x","op":"=","value":1}]}`, wantErr: `where[0] field "1x"`},
		{name: "bad op", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"~","value":"x"}]}`, wantErr: `where[0] op "~" is not one of`},
		{name: "null value", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"=","value":null}]}`, wantErr: "where[0] needs a value (to test for null, use op empty"},
		{name: "empty with value", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"empty","value":"x"}]}`, wantErr: "op empty takes no value"},
		{name: "in not array", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"IN","value":"x"}]}`, wantErr: "IN needs a non-empty array"},
		{name: "in empty", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"IN","value":[]}]}`, wantErr: "IN needs a non-empty array"},
		{name: "in object item", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"IN","value":[{}]}]}`, wantErr: "where[0].value[0] must be a string, number or boolean"},
		{name: "like number", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Name","op":"LIKE","value":5}]}`, wantErr: "LIKE needs a string value"},
		{name: "exponent", given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Age__c","op":"=","value":1e3}]}`, wantErr: "where[0].value must be a plain number"},
		{name: "bad date", given: `{"object":"Case","fields":["Id"],"where":[{"field":"D__c","op":"=","value":"2024-02-30","type":"date"}]}`, wantErr: "where[0].value must be a date"},
		{name: "bad type", given: `{"object":"Case","fields":["Id"],"where":[{"field":"D__c","op":"=","value":"x","type":"time"}]}`, wantErr: "where[0] type must be string, date or datetime"},
		{name: "missing variable", given: `{"object":"Case","fields":["Id"],"where":[{"field":"Subject","op":"=","value":"$(s)"}]}`, wantErr: `where[0].value uses variable "s"`},
		{name: "bad direction", given: `{"object":"Contact","fields":["Id"],"order_by":[{"field":"Name","direction":"up"}]}`, wantErr: "order_by[0] direction must be asc or desc"},
		{name: "bad order string", given: `{"object":"Contact","fields":["Id"],"order_by":"Name DESC, Id; DELETE"}`, wantErr: `order_by: cannot read "Id; DELETE"`},
		{name: "bad order words", given: `{"object":"Contact","fields":["Id"],"order_by":"Name sideways"}`, wantErr: `order_by: cannot read "Name sideways"`},
		{name: "limit too big", given: `{"object":"Contact","fields":["Id"],"limit":2001}`, wantErr: "limit must be between 1 and 2000"},
	}
	ex := newTestExecutor(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := ex.Decode(sfblocks.Search, []byte(tt.given))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode error = %v, want %q", err, tt.wantErr)
				}
				if AsError(err).Code != sfblocks.CodeInvalidRequest {
					t.Fatalf("code = %s, want INVALID_REQUEST", AsError(err).Code)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := job.Statement(); got != tt.want {
				t.Errorf("statement:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestOrderByJSONForms(t *testing.T) {
	var o sfblocks.OrderBy
	if err := json.Unmarshal([]byte(`[{"field":"A","oops":1}]`), &o); err == nil || !strings.Contains(err.Error(), `unknown key "oops" in order_by[0]`) {
		t.Fatalf("unknown key in order item: err = %v", err)
	}
	if err := json.Unmarshal([]byte(`5`), &o); err == nil || !strings.Contains(err.Error(), "order_by must be") {
		t.Fatalf("number order_by: err = %v", err)
	}
}
