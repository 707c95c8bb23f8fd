package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// ReadBudget reads back what the fleet shares, names KV keys cannot hold
// included; no bucket is no readings.
func TestReadBudget(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	ctx := context.Background()
	if got, err := ReadBudget(ctx, e.js, ""); err != nil || len(got) != 0 {
		t.Fatalf("no bucket: %v, %v; want none", got, err)
	}
	b := startBudget(t, e, BudgetConfig{Reserve: 0.10, Worker: "w1"})
	b.Observe("prod", 9500, 10000)
	b.Observe("back office", 12, 5000)
	var got []BudgetReading
	workertest.WaitFor(t, 10*time.Second, "both readings in the bucket", func() bool {
		var err error
		got, err = ReadBudget(ctx, e.js, "")
		return err == nil && len(got) == 2
	})
	if got[0].Account != "back office" || got[0].Used != 12 || got[0].Max != 5000 || got[0].Worker != "w1" || got[0].At.IsZero() ||
		got[1].Account != "prod" || got[1].Used != 9500 || got[1].Max != 10000 {
		t.Errorf("readings %+v", got)
	}
}

// ReadJobLedger shows a job's failure history, its run record and its
// lease, as the worker wrote them; a job with none has none.
func TestReadJobLedger(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	ctx := context.Background()
	job := sfblocks.JobIdentity{Block: sfblocks.Insert, Account: "prod", ID: "call-42"}
	tests := []struct {
		name  string
		given func(t *testing.T, l *ledger)
		want  func(t *testing.T, got JobLedger)
	}{
		{"no buckets", nil, func(t *testing.T, got JobLedger) {
			if got.Attempts != nil || got.Claim != nil {
				t.Errorf("%+v, want nothing", got)
			}
		}},
		{"attempts, run record and lease", func(t *testing.T, l *ledger) {
			first := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
			st := failureState{Attempts: 2, FirstFailure: first, LastFailure: first.Add(time.Minute), LastCode: sfblocks.CodeTimeout,
				LastMessage: "no answer within 5s", Running: &runRecord{Attempt: 3, Worker: "w1", TimeoutMS: 5000}}
			if err := l.record(ctx, job.Key(), st, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := l.claim(ctx, job.Key(), lease{Worker: "w1", Attempt: 3, TimeoutMS: 5000}, time.Minute); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, got JobLedger) {
			a := got.Attempts
			if a == nil || a.Attempts != 2 || a.LastCode != sfblocks.CodeTimeout || a.LastMessage != "no answer within 5s" ||
				a.FinalReason != "" || a.Stored.IsZero() || a.Running == nil || a.Running.Attempt != 3 || a.Running.Worker != "w1" ||
				a.Running.Timeout != 5*time.Second || !a.Running.Started.Equal(a.Stored) {
				t.Errorf("attempts %+v (running %+v)", a, a.Running)
			}
			if c := got.Claim; c == nil || c.Worker != "w1" || c.Attempt != 3 || c.Timeout != 5*time.Second || c.Claimed.IsZero() {
				t.Errorf("claim %+v", c)
			}
		}},
		{"a final failure not dead-lettered yet", func(t *testing.T, l *ledger) {
			st := failureState{Attempts: 5, Final: []byte(`{"status":"failed"}`), Reason: sfblocks.ReasonAttemptsExhausted}
			if err := l.record(ctx, job.Key(), st, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, got JobLedger) {
			if got.Attempts == nil || got.Attempts.FinalReason != sfblocks.ReasonAttemptsExhausted || got.Attempts.Running != nil {
				t.Errorf("attempts %+v", got.Attempts)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.given != nil {
				l := &ledger{timeout: 5 * time.Second}
				var err error
				if l.attempts, err = e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: sfblocks.DefaultAttemptsBucket}); err != nil {
					t.Fatal(err)
				}
				if l.claims, err = e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefaultClaimsBucket, LimitMarkerTTL: time.Second}); err != nil {
					t.Fatal(err)
				}
				tt.given(t, l)
			}
			got, err := ReadJobLedger(ctx, e.js, job, LedgerBuckets{})
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, got)
		})
	}
}
