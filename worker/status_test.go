package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestReportAndReadStatus(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	js, err := jetstream.New(workertest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := ReadStatus(ctx, js, StatusConfig{}); err != nil || got != nil {
		t.Fatalf("ReadStatus before any report = %v, %v; want none and no error", got, err)
	}
	until := time.Date(2026, 12, 1, 14, 3, 27, 0, time.UTC)
	collect := func(breakerState string) func() []AccountStatus {
		return func() []AccountStatus {
			return []AccountStatus{
				{Account: "prod", Breaker: breakerState, BreakerOpenUntil: &until, Token: TokenStatus{State: "valid"}, APIUsed: 10, APIMax: 100},
				{Account: "backoffice", Breaker: "closed", Token: TokenStatus{State: "failed", ErrorCode: "AUTH_FAILED"}},
			}
		}
	}
	cfg := StatusConfig{Interval: 50 * time.Millisecond, TTL: time.Minute}
	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	if err := ReportStatus(ctxA, js, "host-a", collect("open"), cfg); err != nil {
		t.Fatal(err)
	}
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	if err := ReportStatus(ctxB, js, "host-b", collect("closed"), cfg); err != nil {
		t.Fatal(err)
	}

	var got []AccountStatus
	workertest.WaitFor(t, 5*time.Second, "four reports", func() bool {
		got, err = ReadStatus(ctx, js, cfg)
		return err == nil && len(got) == 4
	})
	wantOrder := []string{"backoffice/host-a", "backoffice/host-b", "prod/host-a", "prod/host-b"}
	for i, st := range got {
		if st.Account+"/"+st.Worker != wantOrder[i] {
			t.Errorf("report %d = %s/%s, want %s (sorted by account, then worker)", i, st.Account, st.Worker, wantOrder[i])
		}
		if st.UpdatedAt.IsZero() {
			t.Errorf("report %d has no UpdatedAt", i)
		}
	}
	if p := got[2]; p.Breaker != "open" || p.BreakerOpenUntil == nil || !p.BreakerOpenUntil.Equal(until) || p.APIUsed != 10 || p.Token.State != "valid" {
		t.Errorf("prod/host-a = %+v", p)
	}
	if b := got[0]; b.Token.ErrorCode != "AUTH_FAILED" {
		t.Errorf("backoffice/host-a token = %+v", b.Token)
	}

	// A worker that stops removes its entries.
	stopA()
	workertest.WaitFor(t, 5*time.Second, "host-a's entries removed", func() bool {
		got, err = ReadStatus(ctx, js, cfg)
		return err == nil && len(got) == 2 && got[0].Worker == "host-b" && got[1].Worker == "host-b"
	})
}

// TestReportStatusNudge: a nudge writes the report at once; without it
// the next report would wait for the (here hour-long) interval.
func TestReportStatusNudge(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	js, err := jetstream.New(workertest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	state := "closed"
	collect := func() []AccountStatus {
		mu.Lock()
		defer mu.Unlock()
		return []AccountStatus{{Account: "prod", Breaker: state}}
	}
	nudge := make(chan struct{}, 1)
	cfg := StatusConfig{Interval: time.Hour, TTL: 2 * time.Hour, Nudge: nudge}
	if err := ReportStatus(ctx, js, "host-a", collect, cfg); err != nil {
		t.Fatal(err)
	}
	breakerIs := func(want string) func() bool {
		return func() bool {
			got, err := ReadStatus(ctx, js, cfg)
			return err == nil && len(got) == 1 && got[0].Breaker == want
		}
	}
	workertest.WaitFor(t, 5*time.Second, "the first report", breakerIs("closed"))
	mu.Lock()
	state = "open"
	mu.Unlock()
	nudge <- struct{}{}
	workertest.WaitFor(t, 5*time.Second, "the nudged report showing the breaker open", breakerIs("open"))
}
