package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// serveBaseline runs ServeBaseline in the test process against ns and sim
// until the test ends, and returns once it has said "ready".
func serveBaseline(t *testing.T, ns *server.Server, sim *sfsim.Server, change func(*BaselineConfig)) {
	t.Helper()
	cfg := DefaultBaselineConfig()
	cfg.NATSURL, cfg.InstanceURL, cfg.ClientSecret, cfg.MaxInFlight = ns.ClientURL(), sim.MyDomainURL(), sfsim.DefaultClientSecret, 8
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ready workertest.LogBuffer
	stopped := make(chan struct{})
	var err error
	go func() { err = ServeBaseline(ctx, cfg, &ready); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if err != nil {
			t.Errorf("the baseline ended with %v", err)
		}
	})
	workertest.WaitFor(t, 20*time.Second, "the baseline's ready", func() bool {
		select {
		case <-stopped:
			return true
		default:
			return ready.String() != ""
		}
	})
	select {
	case <-stopped:
		t.Fatalf("the baseline stopped before it was ready: %v", err)
	default:
	}
	if got := ready.String(); got != "ready\n" {
		t.Fatalf("the baseline said %q, want ready", got)
	}
}

func TestBaselineServesJobs(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	sim := workertest.StartSim(t, sfsim.Options{})
	serveBaseline(t, ns, sim, nil)
	nc := workertest.Connect(t, ns)
	send := syncSender(nc, sfblocks.DefaultPrefix)

	tests := []struct {
		name     string
		block    sfblocks.Block
		job      string
		wantFail bool   // counted as failed (the code is HTTP_<status>)
		wantCall string // the simulator's API call kind it makes
		wantBody string // part of Salesforce's raw body, relayed as is
	}{
		{"search", sfblocks.Search, searchJob, false, "query", `"Name":"Ada Byron"`},
		{"distinct search", sfblocks.Search, fmt.Sprintf(distinctSearchJob, searchLimits), false, "query", `"Name":"Ada Byron"`},
		{"upsert", sfblocks.Insert, strings.Replace(insertJob, "%d", "7", 1), false, "upsert", `"success":true`},
		{"create", sfblocks.Insert, `{"object":"Task","fields":{"Subject":"plain"}}`, false, "create", `"success":true`},
		{"bad SOQL", sfblocks.Search, `{"query":"SELECT FROM"}`, true, "", "MALFORMED_QUERY"},
		{"not JSON", sfblocks.Search, `{`, true, "", ""},
	}
	// In order, not in parallel: each case counts the simulator's calls.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sim.Stats().APICalls[tt.wantCall]
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			code := send(ctx, tt.block, []byte(tt.job))
			if tt.wantFail != strings.HasPrefix(code, "HTTP_") || !tt.wantFail && code != "" {
				t.Errorf("code %q, want failed %v", code, tt.wantFail)
			}
			if tt.wantCall != "" {
				if after := sim.Stats().APICalls[tt.wantCall]; after != before+1 {
					t.Errorf("%d %s calls, want 1", after-before, tt.wantCall)
				}
			}
			msg, err := nc.RequestWithContext(ctx, sfblocks.DefaultPrefix+"."+string(tt.block), []byte(tt.job))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(msg.Data), tt.wantBody) {
				t.Errorf("reply %s, want it to hold %s", msg.Data, tt.wantBody)
			}
		})
	}
	// One token for the baseline's whole life: it has no token cache to
	// refresh, which is part of what the worker is compared with.
	if n := sim.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestBaselineStartFailures(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	sim := workertest.StartSim(t, sfsim.Options{})
	closed := workertest.Listen(t) // accepts nothing: a URL that answers no HTTP
	tests := []struct {
		name    string
		change  func(*BaselineConfig)
		wantErr string
	}{
		{"wrong secret", func(c *BaselineConfig) { c.ClientSecret = "wrong" }, EnvSecret},
		{"wrong client id", func(c *BaselineConfig) { c.ClientID = "nobody" }, "check the client id"},
		{"no instance", func(c *BaselineConfig) { c.InstanceURL = "" }, "--instance-url"},
		{"no NATS", func(c *BaselineConfig) { c.NATSURL = "nats://" + closed.Addr().String() }, "--nats-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultBaselineConfig()
			cfg.NATSURL, cfg.InstanceURL, cfg.ClientSecret = ns.ClientURL(), sim.MyDomainURL(), sfsim.DefaultClientSecret
			tt.change(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var ready workertest.LogBuffer
			err := ServeBaseline(ctx, cfg, &ready)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ServeBaseline: %v, want an error saying %q", err, tt.wantErr)
			}
			if ready.String() != "" {
				t.Errorf("it said %q although it failed", ready.String())
			}
		})
	}
}

func TestSyncSenderCodes(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	responder := workertest.Connect(t, ns)
	caller := workertest.Connect(t, ns)

	tests := []struct {
		name   string
		answer nats.MsgHandler // nil: nobody answers
		listen bool            // subscribe even without answering
		want   string
	}{
		{"ok", func(m *nats.Msg) { _ = m.Respond([]byte(`{"status":"ok"}`)) }, true, ""},
		{"worker failure", func(m *nats.Msg) {
			_ = m.RespondMsg(&nats.Msg{Subject: m.Reply, Header: nats.Header{
				"Nats-Service-Error": {"SALESFORCE_UNAVAILABLE: worker saturated"}, "Nats-Service-Error-Code": {"503"}}})
		}, true, "SALESFORCE_UNAVAILABLE"},
		{"baseline failure", func(m *nats.Msg) {
			_ = m.RespondMsg(&nats.Msg{Subject: m.Reply, Header: nats.Header{"Nats-Service-Error-Code": {"404"}}})
		}, true, "HTTP_404"},
		{"no responders", nil, false, "NO_RESPONDERS"},
		{"no answer", nil, true, "TIMEOUT"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A prefix of the case's own, since the cases run together.
			prefix := fmt.Sprintf("codes%d", i)
			if tt.listen {
				handler := tt.answer
				if handler == nil {
					handler = func(*nats.Msg) {}
				}
				sub, err := responder.Subscribe(prefix+".search", handler)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sub.Unsubscribe() })
				if err := responder.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			if got := syncSender(caller, prefix)(ctx, sfblocks.Search, []byte(searchJob)); got != tt.want {
				t.Errorf("code %q, want %q", got, tt.want)
			}
		})
	}
}
