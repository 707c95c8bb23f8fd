package blocks

import (
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
)

func TestFingerprint(t *testing.T) {
	ex := newTestExecutor(t, nil)
	fp := func(block sfblocks.Block, payload string) string {
		t.Helper()
		job, err := ex.Decode(block, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return job.Fingerprint()
	}
	base := fp(sfblocks.Insert, `{"id":"a","object":"Task","fields":{"Subject":"x","Status":"Open"}}`)
	search := fp(sfblocks.Search, `{"id":"a","query":"SELECT Id FROM Task WHERE Subject = '$(s)'","variables":{"s":"x"}}`)
	tests := []struct {
		name    string
		block   sfblocks.Block
		payload string
		same    string // the fingerprint it must equal; "" when it must differ from base and search
	}{
		{"same insert, other id and timeout", sfblocks.Insert, `{"id":"b","timeout_ms":5000,"object":"Task","fields":{"Status":"Open","Subject":"x"}}`, base},
		{"same insert through a variable", sfblocks.Insert, `{"id":"c","object":"Task","fields":{"Subject":"$(s)","Status":"Open"},"variables":{"s":"x"}}`, base},
		{"other value", sfblocks.Insert, `{"id":"a","object":"Task","fields":{"Subject":"y","Status":"Open"}}`, ""},
		{"other object", sfblocks.Insert, `{"id":"a","object":"Case","fields":{"Subject":"x","Status":"Open"}}`, ""},
		{"upsert", sfblocks.Insert, `{"id":"a","object":"Task","fields":{"Subject":"x","Status":"Open"},"external_id":{"field":"External_Id__c","value":"v"}}`, ""},
		{"other account", sfblocks.Insert, `{"id":"a","account":"main","object":"Task","fields":{"Subject":"x","Status":"Open"}}`, ""},
		{"same search, literal", sfblocks.Search, `{"id":"z","query":"SELECT Id FROM Task WHERE Subject = 'x'"}`, search},
		{"other statement", sfblocks.Search, `{"id":"a","query":"SELECT Id FROM Task WHERE Subject = 'y'"}`, ""},
		{"other max_records", sfblocks.Search, `{"id":"a","max_records":5,"query":"SELECT Id FROM Task WHERE Subject = 'x'"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fp(tt.block, tt.payload)
			if len(got) != 32 || strings.Trim(got, "0123456789abcdef") != "" {
				t.Fatalf("fingerprint %q is not 32 hex digits", got)
			}
			switch {
			case tt.same != "" && got != tt.same:
				t.Errorf("fingerprint %s, want %s (same content)", got, tt.same)
			case tt.same == "" && (got == base || got == search):
				t.Errorf("fingerprint %s equals another job's", got)
			}
		})
	}
}

func TestIdempotencyValue(t *testing.T) {
	a := IdempotencyValue(sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "call-42"})
	b := IdempotencyValue(sfblocks.JobIdentity{Block: sfblocks.Insert, Account: "prod", ID: "call-42"})
	if a == b || !strings.HasPrefix(a, "sfb-") || len(a) != 36 || a != IdempotencyValue(sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "call-42"}) {
		t.Errorf("IdempotencyValue = %q, %q: want stable, distinct per identity, sfb- and 32 hex digits", a, b)
	}
}
