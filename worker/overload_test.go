package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestOverloadIsAnsweredNotDropped floods a worker whose jobs are held with
// more concurrent requests than its slots and backlog hold: every request
// gets an answer, the ones beyond the backlog at once and without running,
// and no more jobs than the limit ever run together.
func TestOverloadIsAnsweredNotDropped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		limit, backlog int // backlog -1: the default
		n              int
		wantBacklog    int
	}{
		{name: "small backlog", limit: 2, backlog: 3, n: 20, wantBacklog: 3},
		{name: "no backlog", limit: 1, backlog: 0, n: 6, wantBacklog: 0},
		{name: "default backlog", limit: 3, backlog: -1, n: 30, wantBacklog: DefaultBacklogFactor * 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := workertest.StartNATS(t)
			f := newFake(true)
			m := newTestMetrics(t)
			opts := []Option{WithMaxInFlight(tc.limit), WithMetrics(m)}
			if tc.backlog >= 0 {
				opts = append(opts, WithMaxBacklog(tc.backlog))
			}
			startWorker(t, workertest.Connect(t, s), f, opts...)
			nc := workertest.Connect(t, s)

			type answer struct {
				id  string
				msg *nats.Msg
				err error
			}
			answers := make(chan answer, tc.n)
			var wg sync.WaitGroup
			for i := range tc.n {
				// Both endpoints share the slots and the backlog.
				subject, id := "sfblocks.search", fmt.Sprint("s", i)
				if i%2 == 1 {
					subject, id = "sfblocks.insert", fmt.Sprint("i", i)
				}
				wg.Go(func() {
					data, _ := json.Marshal(map[string]string{"id": id})
					// Far longer than the test: a dropped job shows as this error.
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					msg, err := nc.RequestWithContext(ctx, subject, data)
					answers <- answer{id, msg, err}
				})
			}
			t.Cleanup(wg.Wait)

			refused := tc.n - tc.limit - tc.wantBacklog
			got := map[string]*sfblocks.Reply{}
			collect := func(k int) {
				t.Helper()
				for range k {
					a := <-answers
					if a.err != nil {
						t.Fatalf("job %s: %v (a job must never go unanswered)", a.id, a.err)
					}
					var rep sfblocks.Reply
					if err := json.Unmarshal(a.msg.Data, &rep); err != nil {
						t.Fatalf("job %s: reply %q: %v", a.id, a.msg.Data, err)
					}
					if rep.ID != a.id {
						t.Errorf("job %s answered with id %q", a.id, rep.ID)
					}
					if rep.Status == sfblocks.StatusFailed {
						wantMsg := "worker saturated"
						if rep.Error == nil || rep.Error.Code != sfblocks.CodeSalesforceUnavailable || !rep.Error.Retryable ||
							!strings.Contains(rep.Error.Message, wantMsg) || !strings.Contains(rep.Error.Message, "add workers") {
							t.Errorf("job %s: refused with %+v, want retryable SALESFORCE_UNAVAILABLE saying %q", a.id, rep.Error, wantMsg)
						}
						if h := a.msg.Header.Get(micro.ErrorCodeHeader); h != "503" {
							t.Errorf("job %s: %s = %q, want 503", a.id, micro.ErrorCodeHeader, h)
						}
					}
					got[a.id] = &rep
				}
			}
			// While the held jobs block every slot, the refused ones are
			// answered: they wait for nothing.
			collect(refused)
			for id, rep := range got {
				if rep.Status != sfblocks.StatusFailed {
					t.Errorf("job %s answered %s while all slots were held", id, rep.Status)
				}
			}
			f.waitEntered(t, tc.limit)
			if v := gaugeValue(t, m.Backlog); int(v) != tc.wantBacklog {
				t.Errorf("backlog gauge = %v, want %d", v, tc.wantBacklog)
			}
			close(f.release)
			collect(tc.n - refused)

			var ok, failed int
			for _, rep := range got {
				switch rep.Status {
				case sfblocks.StatusOK:
					ok++
				case sfblocks.StatusFailed:
					failed++
				}
			}
			if len(got) != tc.n || ok != tc.limit+tc.wantBacklog || failed != refused {
				t.Errorf("answers: %d distinct, %d ok, %d refused; want %d, %d, %d", len(got), ok, failed, tc.n, tc.limit+tc.wantBacklog, refused)
			}
			if mc := f.maxConcurrent(); mc > int64(tc.limit) {
				t.Errorf("max concurrent = %d, above the limit %d", mc, tc.limit)
			}
			if calls := f.calls.Load(); calls != int64(tc.limit+tc.wantBacklog) {
				t.Errorf("handler ran %d jobs, want %d (refused jobs never run)", calls, tc.limit+tc.wantBacklog)
			}
			if v := counterValue(t, m.Overloaded); int(v) != refused {
				t.Errorf("overloaded counter = %v, want %d", v, refused)
			}
			if v := gaugeValue(t, m.Backlog); v != 0 {
				t.Errorf("backlog gauge = %v after the run, want 0", v)
			}
			if v := counterValue(t, m.Jobs.WithLabelValues("search", "failed", "SALESFORCE_UNAVAILABLE")) +
				counterValue(t, m.Jobs.WithLabelValues("insert", "failed", "SALESFORCE_UNAVAILABLE")); int(v) != refused {
				t.Errorf("jobs_total of refused jobs = %v, want %d", v, refused)
			}
		})
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
