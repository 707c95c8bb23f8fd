package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// The record values a job carries never reach an error message, a header,
// a dead letter's error or reason, the attempts bucket or a log line above
// debug, on any failure path: they belong in the payload and in
// Salesforce's own answer (result_body) only.
func TestRecordValuesStayOutOfErrors(t *testing.T) {
	t.Parallel()
	const (
		email   = "ada.sentinel.9137@example.com"
		subject = "Callback sentinel 9137"
		extID   = "ext-sentinel-9137"
	)
	sentinels := []string{email, "sentinel.9137", subject, extID, "sentinel%209137", "sentinel+9137"}
	search := `{"id":"s-%s","query":"SELECT Id FROM Contact WHERE Email = '$(e)'","variables":{"e":"` + email + `"},"timeout_ms":300}`
	insert := `{"id":"i-%s","object":"Task","fields":{"Subject":"` + subject + `"},"timeout_ms":300}`
	upsert := `{"id":"u-%s","object":"Task","fields":{"Subject":"` + subject + `"},"external_id":{"field":"External_Id__c","value":"` + extID + `"},"timeout_ms":300}`
	bare := `{"id":"b-%s","query":"SELECT Id FROM Opportunity WHERE Amount > $(x)","variables":{"x":"` + email + `"}}`
	tests := []struct {
		name  string
		fault func(e *exo)
	}{
		{"dropped connection", func(e *exo) { mustDo(t, e.sim.Faults().StartOutage(sfsim.OutageRefuse, time.Hour, time.Now())) }},
		{"timeout", func(e *exo) {
			mustDo(t, e.sim.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(2 * time.Second)}))
		}},
		{"503", func(e *exo) {
			mustDo(t, e.sim.Faults().StartOutage(sfsim.OutageUnavailable, time.Hour, time.Now()))
		}},
		{"Salesforce refuses", func(e *exo) {
			mustDo(t, e.sim.Faults().AddErrorRate(sfsim.ErrorRule{Rate: 1, Status: 400, ErrorCode: "MALFORMED_QUERY",
				Message: "bad value " + email + " / " + subject + " / " + extID}))
		}},
		{"a panicking client", func(e *exo) {
			e.wrap = func(c *salesforce.Client) blocks.SalesforceAPI {
				return &panicking{Client: c, value: email + subject + extID}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExo(t)
			tt.fault(e)
			cfg := exoFast
			cfg.MaxAttempts = 2
			e.worker(nil, cfg)
			var seen []string
			for _, payload := range []string{search, insert, upsert, bare} {
				id := strings.ReplaceAll(tt.name, " ", "-")
				job := []byte(strings.Replace(payload, "%s", id, 1))
				block := sfblocks.Insert
				if strings.Contains(payload, `"query"`) {
					block = sfblocks.Search
				}
				msg, err := e.nc.RequestMsg(&nats.Msg{Subject: sfblocks.Subject(sfblocks.DefaultPrefix, block), Data: job}, 20*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				var r sfblocks.Reply
				_ = json.Unmarshal(msg.Data, &r)
				if r.Error != nil {
					seen = append(seen, r.Error.Message)
				}
				seen = append(seen, msg.Header.Get(micro.ErrorHeader))
				// The durable path: its reply, or (a create that cannot be
				// reconciled while Salesforce is down waits) its attempts.
				inbox := e.nc.NewInbox()
				sub, err := e.nc.SubscribeSync(inbox)
				if err != nil {
					t.Fatal(err)
				}
				e.publish(block, "", "d-"+r.ID, strings.Replace(string(job), `"id":"`, `"id":"d-`, 1), inbox)
				if m, err := sub.NextMsg(5 * time.Second); err == nil {
					var d sfblocks.Reply
					_ = json.Unmarshal(m.Data, &d)
					if d.Error != nil {
						seen = append(seen, d.Error.Message)
					}
					seen = append(seen, m.Header.Get(micro.ErrorHeader))
				}
				_ = sub.Unsubscribe()
			}
			// Dead letters (their error and reason; the payload is the job).
			dls, _ := e.js.Stream(context.Background(), sfblocks.DefaultDLQStream)
			info, _ := dls.Info(context.Background())
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
				raw, err := dls.GetMsg(context.Background(), seq)
				if err != nil {
					continue
				}
				var dl sfblocks.DeadLetter
				_ = json.Unmarshal(raw.Data, &dl)
				seen = append(seen, dl.Error.Message, dl.Reason)
			}
			// The attempts bucket.
			kv, _ := e.js.KeyValue(context.Background(), sfblocks.DefaultAttemptsBucket)
			if lister, err := kv.ListKeys(context.Background()); err == nil {
				for k := range lister.Keys() {
					if entry, err := kv.Get(context.Background(), k); err == nil {
						seen = append(seen, string(entry.Value()))
					}
				}
			}
			// Log lines above debug.
			for _, line := range e.logs.Lines() {
				if !strings.Contains(line, `"level":"debug"`) && !strings.Contains(line, `"level":"trace"`) {
					seen = append(seen, line)
				}
			}
			t.Logf("checked %d, e.g. %q", len(seen), seen[0])
			for _, s := range seen {
				for _, v := range sentinels {
					if strings.Contains(s, v) {
						t.Errorf("a record value (%q) escaped into: %s", v, s)
					}
				}
			}
			if len(seen) < 8 {
				t.Errorf("only %d messages were checked; the fault did not fail the jobs", len(seen))
			}
		})
	}
}

// panicking is a client that panics with the job's values in the panic.
type panicking struct {
	*salesforce.Client
	value string
}

func (p *panicking) Query(context.Context, string, ...salesforce.QueryOption) (*salesforce.QueryResult, error) {
	panic("boom: " + p.value)
}

func (p *panicking) Create(context.Context, string, map[string]any) (*salesforce.SaveResult, error) {
	panic("boom: " + p.value)
}

func (p *panicking) Upsert(context.Context, string, string, string, map[string]any) (*salesforce.SaveResult, error) {
	panic("boom: " + p.value)
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
