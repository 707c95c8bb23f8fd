package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
)

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runCmd runs the command line in-process and returns its exit status and output.
func runCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// startServe runs 'sfblocks serve' in the background until the test ends,
// and waits until /readyz says it takes jobs.
func startServe(t *testing.T, args ...string) (metricsAddr string, logs *syncBuffer) {
	t.Helper()
	metricsAddr = freeAddr(t)
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	args = append([]string{"serve", "--metrics-addr", metricsAddr, "--log-format", "json", "--data-dir", t.TempDir()}, args...)
	go func() { done <- run(ctx, args, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d; logs:\n%s", code, logs)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not drain and exit within 30s")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d; logs:\n%s", code, logs)
		default:
		}
		if res, err := http.Get("http://" + metricsAddr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return metricsAddr, logs
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve never became ready; logs:\n%s", logs)
	return "", nil
}

func TestServeDevelopmentModeAndCall(t *testing.T) {
	ns := startNATS(t)
	url := ns.ClientURL()
	metrics, logs := startServe(t, "--nats-url", url, "--sim-addr", "127.0.0.1:0")
	ctx := context.Background()

	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStatus sfblocks.Status
		wantInOut  string
	}{
		{"soql search with a variable", []string{"call", "search", "--nats-url", url,
			"--query", "SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'", "--var", "ANI=+1 415 555 0100"}, "", 0, "ok", "Ada Byron"},
		{"hostile value finds nothing", []string{"call", "search", "--nats-url", url,
			"--query", "SELECT Id FROM Contact WHERE LastName = '$(x)'", "--var", "x=' OR Name != '"}, "", 3, "no_data", ""},
		{"structured search", []string{"call", "search", "--nats-url", url,
			"--object", "Contact", "--fields", "Id,Name,Email", "--where", "Email=ada@example.com"}, "", 0, "ok", "ada@example.com"},
		{"sosl search", []string{"call", "search", "--nats-url", url, "--language", "sosl",
			"--query", "FIND {$(email)} IN EMAIL FIELDS RETURNING Contact(Id, Name)", "--var", "email=ada@example.com"}, "", 0, "ok", "Ada Byron"},
		{"insert", []string{"call", "insert", "--nats-url", url, "--object", "Case", "--field", "Subject=Callback requested", "--field", "Origin=Phone"}, "", 0, "ok", `"object_id": "500`},
		{"upsert from stdin", []string{"call", "insert", "--nats-url", url, "--file", "-"},
			`{"id":"job-up-1","object":"Task","fields":{"Subject":"Call"},"external_id":{"field":"External_Id__c","value":"call-1"}}`, 0, "ok", `"id": "job-up-1"`},
		{"salesforce error", []string{"call", "insert", "--nats-url", url, "--object", "Contact", "--field", "FirstName=NoLast"}, "", 1, "failed", "REQUIRED_FIELD_MISSING"},
		{"invalid request", []string{"call", "search", "--nats-url", url, "--file", "-"}, `{"query":"SELECT Id FROM Contact","bogus":1}`, 1, "failed", "INVALID_REQUEST"},
		{"unknown account", []string{"call", "search", "--nats-url", url, "--account", "nope", "--query", "SELECT Id FROM Contact"}, "", 1, "failed", "UNKNOWN_ACCOUNT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin = strings.NewReader(tt.stdin)
			t.Cleanup(func() { stdin = os.Stdin })
			code, out, errOut := runCmd(t, ctx, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			var reply sfblocks.Reply
			if err := json.Unmarshal([]byte(out), &reply); err != nil {
				t.Fatalf("stdout is not a JSON reply: %v\n%s", err, out)
			}
			if reply.Status != tt.wantStatus || reply.ID == "" || reply.Attempt != 1 {
				t.Errorf("reply status %q id %q attempt %d, want status %q", reply.Status, reply.ID, reply.Attempt, tt.wantStatus)
			}
			if !strings.Contains(out, tt.wantInOut) {
				t.Errorf("reply does not contain %q:\n%s", tt.wantInOut, out)
			}
		})
	}

	// One log event per job outcome, with no record values at info level.
	if n := strings.Count(logs.String(), `"message":"job done"`); n != len(tests) {
		t.Errorf("%d job outcome events for %d jobs; logs:\n%s", n, len(tests), logs)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"message":"try: sfblocks call`) {
			continue // the development-mode hint quotes the seed data on purpose
		}
		for _, value := range []string{"Ada Byron", "+1 415 555 0100", "Callback requested", sfsim.DefaultClientSecret} {
			if strings.Contains(line, value) {
				t.Errorf("a log line at info level contains %q: %s", value, line)
			}
		}
	}
	// sfblocks status shows what the worker reports (every 5 s).
	var statuses []worker.AccountStatus
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		code, out, errOut := runCmd(t, ctx, "status", "--nats-url", url, "--json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		statuses = nil
		if err := json.Unmarshal([]byte(out), &statuses); err != nil {
			t.Fatalf("status --json: %v: %s", err, out)
		}
		if len(statuses) == 1 && statuses[0].Token.State == "valid" && statuses[0].APIUsed > 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(statuses) != 1 || statuses[0].Account != "dev" || statuses[0].Breaker != "closed" || statuses[0].Token.State != "valid" || statuses[0].APIMax != sfsim.DefaultDailyAPILimit {
		t.Errorf("status = %+v, want dev: breaker closed, token valid, API usage reported", statuses)
	}
	if code, out, _ := runCmd(t, ctx, "status", "--nats-url", url); code != 0 || !regexp.MustCompile(`dev\s+\S+\s+closed\s+valid\s+\d+/15000`).MatchString(out) {
		t.Errorf("status table: exit %d\n%s", code, out)
	}

	res, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`sfblocks_jobs_total{block="search",code="",status="ok"}`, `sfblocks_salesforce_requests_total{code="200",kind="data",method="get"}`,
		`sfblocks_salesforce_requests_total{code="200",kind="token",method="post"} 1`, `sfblocks_salesforce_api_usage_used{account="dev"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{nil, 2, "Usage: sfblocks COMMAND"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"serve", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"call"}, 2, "call search|insert"},
		{[]string{"call", "search", "--var", "novalue", "--nats-url", "nats://127.0.0.1:1"}, 1, `--var "novalue": write NAME=VALUE`},
		{[]string{"accounts"}, 2, "accounts check"},
		{[]string{"accounts", "check", "--no-nats"}, 1, "no accounts config"},
		{[]string{"version"}, 0, ""},
	}
	for _, tt := range tests {
		code, _, errOut := runCmd(t, ctx, tt.args...)
		if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("sfblocks %v: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
		}
	}
}

func writeConfig(t *testing.T, accounts ...map[string]any) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"accounts": accounts})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "accounts.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthorizeThenAccountsCheck(t *testing.T) {
	ns := startNATS(t)
	sim, err := sfsim.Start("127.0.0.1:0", sfsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	_, key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SFBLOCKS_TOKEN_KEY", key)
	t.Setenv("SIM_SECRET", sfsim.DefaultClientSecret)
	callback := "http://" + freeAddr(t) + "/oauth/callback"
	cfg := writeConfig(t,
		map[string]any{"name": "prod", "default": true, "login_url": sim.LoginURL(), "client_id": sfsim.DefaultClientID,
			"client_secret": "env:SIM_SECRET", "flow": "web_server", "redirect_url": callback},
		map[string]any{"name": "backoffice", "login_url": sim.MyDomainURL(), "client_id": sfsim.DefaultClientID,
			"client_secret": "env:SIM_SECRET", "flow": "client_credentials"},
		map[string]any{"name": "broken", "login_url": sim.MyDomainURL(), "client_id": sfsim.DefaultClientID,
			"client_secret": "wrong-secret", "flow": "client_credentials"},
	)
	ctx := context.Background()
	natsURL := ns.ClientURL()

	// Before authorization the web_server account cannot get a token.
	code, out, errOut := runCmd(t, ctx, "accounts", "check", "--config", cfg, "--nats-url", natsURL)
	if code != 1 || !regexp.MustCompile(`prod \(default\)\s+web_server\s+FAILED NOT_AUTHORIZED`).MatchString(out) {
		t.Fatalf("check before authorize: exit %d\n%s%s", code, out, errOut)
	}

	// Authorize: the browser is played by an HTTP client that follows the
	// simulator's redirect to the command's callback listener.
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var authErr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"authorize", "--config", cfg, "--account", "prod", "--nats-url", natsURL, "--timeout", "30s"}, pw, &authErr)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var authURL string
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "http") {
			authURL = line
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if authURL == "" {
		t.Fatalf("authorize printed no URL; stderr: %s", authErr.String())
	}
	var res *http.Response
	for i := 0; i < 50; i++ { // the callback listener may not be up yet
		res, err = http.Get(authURL)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if code := <-done; code != 0 || !strings.Contains(string(page), "authorized") {
		t.Fatalf("authorize exit %d, page %q, stderr %s", code, page, authErr.String())
	}

	code, out, errOut = runCmd(t, ctx, "accounts", "check", "--config", cfg, "--nats-url", natsURL)
	if code != 1 {
		t.Errorf("exit %d, want 1 (the broken account fails)", code)
	}
	for _, re := range []string{`prod \(default\)\s+web_server\s+ok\s+\d+/15000`, `backoffice\s+client_credentials\s+ok\s+\d+/15000`, `broken\s+client_credentials\s+FAILED AUTH_FAILED`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("accounts check output lacks %s:\n%s%s", re, out, errOut)
		}
	}
	for _, secret := range []string{sfsim.DefaultClientSecret, "wrong-secret", key} {
		if strings.Contains(out+errOut+authErr.String(), secret) {
			t.Errorf("a secret was printed")
		}
	}

	// JSON form.
	_, out, _ = runCmd(t, ctx, "accounts", "check", "--config", cfg, "--nats-url", natsURL, "--json")
	var checks []accountCheck
	if err := json.Unmarshal([]byte(out), &checks); err != nil || len(checks) != 3 || !checks[0].AuthOK || checks[0].Instance != sim.InstanceURL() {
		t.Errorf("--json: %v %+v", err, checks)
	}
}
