package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/deploy"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// fastDurable keeps the tests short: an idle pull waits 200ms, so a
// worker stops quickly, and retries come fast.
var fastDurable = worker.DurableConfig{FetchWait: 200 * time.Millisecond, SetupTimeout: 10 * time.Second,
	MaxAttempts: 2, RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond}

// simExecutor starts the simulator and returns it with an executor of one
// account, "sim" (the default), on it.
func simExecutor(t *testing.T) (*sfsim.Server, *blocks.Executor) {
	t.Helper()
	sim := workertest.StartSim(t, sfsim.Options{})
	tok := sim.IssueToken("")
	api, err := salesforce.New(salesforce.StaticToken(tok.AccessToken, tok.InstanceURL))
	if err != nil {
		t.Fatal(err)
	}
	exec, err := blocks.NewExecutor(blocks.StaticAccounts{Default: "sim", Clients: map[string]blocks.SalesforceAPI{"sim": api}},
		blocks.WithDefaultTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return sim, exec
}

// startWorker connects as cfg says, through worker.Connect as `sfblocks
// serve` does, and starts a worker with the durable path on exec; both end
// with the test. It fails the test when the connection or the start fails.
func startWorker(t *testing.T, cfg worker.ConnConfig, exec *blocks.Executor, opts ...worker.Option) *worker.Worker {
	t.Helper()
	nc, err := worker.Connect(cfg)
	if err != nil {
		t.Fatalf("worker.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	w, err := worker.New(nc, exec, append([]worker.Option{worker.WithDurable(fastDurable)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("worker.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Stop(ctx)
	})
	return w
}

// workerConn is the worker role's connection config for ns.
func workerConn(ns *workertest.ConfigNATS) worker.ConnConfig {
	return worker.ConnConfig{URLs: []string{ns.ClientURL()}, User: deploy.WorkerUser, Password: workertest.RolePassword(deploy.WorkerUser)}
}

// runBothPaths sends, through c, a synchronous search that finds Ada Byron
// and a durable insert (a fresh id), and fails the test unless both are
// answered ok.
func runBothPaths(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := c.Search(ctx, &sfblocks.SearchRequest{Query: "SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'",
		Variables: map[string]any{"ANI": "+1 415 555 0100"}})
	if err != nil || rep.Status != sfblocks.StatusOK || rep.First["Name"] != "Ada Byron" {
		t.Fatalf("sync search: %+v, %v", rep, err)
	}
	rep, err = c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{Object: "Task", Fields: map[string]any{"Subject": "Call from $(ani)"},
		Variables: map[string]any{"ani": "+1 415 555 0100"}})
	if err != nil || rep.Status != sfblocks.StatusOK || !strings.HasPrefix(rep.ObjectID, "00T") {
		t.Fatalf("durable insert: %+v, %v", rep, err)
	}
}

// asyncErrors collects the asynchronous errors of a connection, which is
// how a NATS server reports a permissions violation.
type asyncErrors struct {
	mu   sync.Mutex
	errs []error
}

// option is the nats.ErrorHandler that records into e.
func (e *asyncErrors) option() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.errs = append(e.errs, err)
	})
}

// violation waits up to 5s for a permissions violation naming subject
// (`Permissions Violation for Publish to "subject"` or `... Subscription
// to "subject"`) and returns it, or nil.
func (e *asyncErrors) violation(subject string) error {
	var found error
	workertest.Eventually(5*time.Second, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, err := range e.errs {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), fmt.Sprintf("to %q", subject)) {
				found = err
				return true
			}
		}
		return false
	})
	return found
}

// streamState is what the test compares to see that nothing changed: a
// stream's messages, last sequence and consumers, or that it is missing.
type streamState struct {
	Missing       bool
	Msgs, LastSeq uint64
	Consumers     int
}

// streamStates reads the state of every stream the fleet uses, as the
// server itself sees them (its monitoring API), whatever any role may
// read.
func streamStates(t *testing.T, ns *workertest.ConfigNATS) map[string]streamState {
	t.Helper()
	info, err := ns.Jsz(&server.JSzOptions{Account: "SFBLOCKS", Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]server.StreamState{}
	for _, acc := range info.AccountDetails {
		for _, sd := range acc.Streams {
			have[sd.Name] = sd.State
		}
	}
	out := map[string]streamState{}
	for _, name := range []string{sfblocks.DefaultJobsStream, sfblocks.DefaultDLQStream, "KV_" + sfblocks.DefaultResultsBucket,
		"KV_" + sfblocks.DefaultAttemptsBucket, "KV_" + worker.DefaultClaimsBucket, "KV_" + sfblocks.DefaultStatusBucket,
		"KV_" + auth.DefaultBucket, "OBJ_" + worker.DefaultPayloadsBucket, worker.DefaultParkedStream, "KV_" + worker.DefaultBudgetBucket} {
		st, ok := have[name]
		if !ok {
			out[name] = streamState{Missing: true}
			continue
		}
		out[name] = streamState{Msgs: st.Msgs, LastSeq: st.LastSeq, Consumers: st.Consumers}
		if name == "KV_"+worker.DefaultClaimsBucket {
			// Claims are leases the server expires on its own clock,
			// writing their removal into the bucket: its sequence moves
			// with nobody writing. A forbidden write shows as a violation.
			out[name] = streamState{Consumers: st.Consumers}
		}
	}
	return out
}
