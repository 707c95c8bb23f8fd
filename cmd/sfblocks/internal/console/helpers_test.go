package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/console"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// testToken is the operator token of the tests' consoles.
const testToken = "console-test-token-0123456789abcdef"

// fleet is what a console test runs against: an embedded NATS server with
// JetStream, the simulator, one real worker with the durable path on it,
// the console under httptest, and a browser-like HTTP client.
type fleet struct {
	t       testing.TB
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	sim     *sfsim.Server
	access  string // the worker's access token: it must never be rendered
	client  *client.Client
	console *console.Console
	srv     *httptest.Server
	http    *http.Client
	logs    *workertest.LogBuffer
	// stopWorker stops the worker newFleet started.
	stopWorker func()

	mu    sync.Mutex
	pages map[string]string // every page body fetched, by path
}

// fleetOptions tune newFleet.
type fleetOptions struct {
	// maxAttempts of the worker's durable path; 0 means 1 (dead-letter at
	// the first failure).
	maxAttempts int
	// console changes the console's config before New.
	console func(*console.Config)
	// noWorker starts no worker.
	noWorker bool
}

func newFleet(t testing.TB, o fleetOptions) *fleet {
	t.Helper()
	f := &fleet{t: t, ns: workertest.StartNATS(t), sim: workertest.StartSim(t, sfsim.Options{}), pages: map[string]string{}}
	f.nc, f.js = workertest.JetStream(t, f.ns)
	var err error
	if f.client, err = client.New(f.nc, client.WithTimeout(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !o.noWorker {
		f.stopWorker = f.startWorker(t, o.maxAttempts)
	}
	f.logs = &workertest.LogBuffer{}
	cfg := console.Config{NATS: workertest.Connect(t, f.ns), Token: testToken, Logger: f.logs.Logger(-1), SampleInterval: 100 * time.Millisecond,
		ReplayTimeout: 20 * time.Second}
	if o.console != nil {
		o.console(&cfg)
	}
	if f.console, err = console.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.console.Close() })
	sampling, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() { defer close(sampled); _ = f.console.Run(sampling) }()
	t.Cleanup(func() { stopSampling(); <-sampled })
	f.srv = httptest.NewServer(f.console.Handler())
	t.Cleanup(f.srv.Close)
	jar, _ := cookiejar.New(nil)
	f.http = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

// startWorker starts a worker with the durable path on the simulator, with
// a static token (the one the test greps pages for), a circuit breaker and
// an API budget, reporting its account's state to the status bucket as
// `sfblocks serve` does. stop stops it (and is called when the test ends).
func (f *fleet) startWorker(t testing.TB, maxAttempts int) (stop func()) {
	t.Helper()
	if maxAttempts == 0 {
		maxAttempts = 1
	}
	tok := f.sim.IssueToken("")
	f.access = tok.AccessToken
	breakers, err := breaker.NewSet(breaker.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	budget, err := worker.NewBudget(worker.BudgetConfig{Reserve: worker.DefaultReserve, Worker: "console-test-worker"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := budget.Start(ctx, f.js); err != nil {
		t.Fatal(err)
	}
	api, err := salesforce.New(salesforce.StaticToken(tok.AccessToken, tok.InstanceURL),
		salesforce.WithHTTPClient(breakers.For("sim").Client(salesforce.SharedHTTPClient())),
		salesforce.WithUsageObserver(func(u salesforce.Usage) { budget.Observe("sim", u.Used, u.Max) }))
	if err != nil {
		t.Fatal(err)
	}
	exec, err := blocks.NewExecutor(blocks.StaticAccounts{Default: "sim", Clients: map[string]blocks.SalesforceAPI{"sim": api}},
		blocks.WithDefaultTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(workertest.Connect(t, f.ns), exec, worker.WithBudget(budget), worker.WithDurable(worker.DurableConfig{FetchWait: 200 * time.Millisecond,
		SetupTimeout: 10 * time.Second, MaxAttempts: maxAttempts, RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel() // the status reports and the budget
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = w.Stop(ctx)
		})
	}
	t.Cleanup(stop)
	br := breakers.For("sim")
	collect := func() []worker.AccountStatus {
		st := worker.AccountStatus{Account: "sim", Breaker: br.State().String(), Token: worker.TokenStatus{State: "valid"}}
		if until, ok := br.OpenUntil(); ok {
			st.BreakerOpenUntil = &until
		}
		if b := budget.State("sim"); b.Max > 0 {
			st.APIUsed, st.APIMax, st.APIReserveFrom, st.Budget = b.Used, b.Max, b.ReserveFrom, "ok"
			if b.InReserve {
				st.Budget = "reserve"
			}
		}
		return []worker.AccountStatus{st}
	}
	if err := worker.ReportStatus(ctx, f.js, "console-test-worker", collect, worker.StatusConfig{Interval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	return stop
}

// do sends a request with the console's cookies and returns the status,
// the body and the Location header.
func (f *fleet) do(t testing.TB, req *http.Request) (int, string, string) {
	t.Helper()
	res, err := f.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	f.mu.Lock()
	f.pages[req.Method+" "+req.URL.RequestURI()] = string(body)
	f.mu.Unlock()
	return res.StatusCode, string(body), res.Header.Get("Location")
}

// get fetches path.
func (f *fleet) get(t testing.TB, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	code, body, _ := f.do(t, req)
	return code, body
}

// post sends form to path, with the session's CSRF token unless the form
// sets its own; it returns the status, the body and where it redirects.
func (f *fleet) post(t testing.TB, path string, form url.Values) (int, string, string) {
	t.Helper()
	if !form.Has("csrf") {
		form.Set("csrf", f.csrf(t))
	}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return f.do(t, req)
}

var csrfRe = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// csrf reads the session's CSRF token from a page.
func (f *fleet) csrf(t testing.TB) string {
	t.Helper()
	_, body := f.get(t, "/jobs")
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on /jobs (logged in?):\n%s", body)
	}
	return m[1]
}

// login opens a session with the operator token.
func (f *fleet) login(t testing.TB) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/login", strings.NewReader(url.Values{"token": {testToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, body, loc := f.do(t, req)
	if code != http.StatusSeeOther || loc != "/" {
		t.Fatalf("login: %d → %q\n%s", code, loc, body)
	}
}

// action waits for the action a POST redirected to, and returns its final
// progress.
func (f *fleet) action(t testing.TB, loc string) map[string]any {
	t.Helper()
	if !strings.HasPrefix(loc, "/actions/") {
		t.Fatalf("the action redirected to %q, not to its page", loc)
	}
	var st map[string]any
	workertest.WaitFor(t, 30*time.Second, "the action "+loc+" to end", func() bool {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+loc+"/progress", nil)
		res, err := f.http.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		st = nil
		if json.NewDecoder(res.Body).Decode(&st) != nil {
			return false
		}
		return st["done"] == true
	})
	return st
}

// deadLetters waits until n dead letters match filter.
func (f *fleet) deadLetters(t testing.TB, n int, filter client.DLQFilter) []*sfblocks.DeadLetter {
	t.Helper()
	var dls []*sfblocks.DeadLetter
	workertest.WaitFor(t, 20*time.Second, fmt.Sprintf("%d dead letters matching %+v", n, filter), func() bool {
		var err error
		dls, err = f.client.ListDeadLetters(context.Background(), filter)
		return err == nil && len(dls) == n
	})
	return dls
}

// publish publishes a durable job and returns at once.
func (f *fleet) publish(t testing.TB, block sfblocks.Block, job any) {
	t.Helper()
	if _, err := f.client.PublishDurable(context.Background(), block, job); err != nil {
		t.Fatal(err)
	}
}

// count counts the simulator's records a SOQL query returns.
func (f *fleet) count(t testing.TB, soql string) int {
	t.Helper()
	res, err := f.sim.DB().Query(soql, simdb.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Records)
}

// rendered returns every page body fetched so far.
func (f *fleet) rendered() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.pages))
	for k, v := range f.pages {
		out[k] = v
	}
	return out
}
