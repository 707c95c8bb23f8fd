package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// runCmd runs the command line in-process and returns its exit status and output.
func runCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// startServe runs 'sfblocks serve' in the background until the test ends,
// with /metrics on a port the system picks (--metrics-addr 127.0.0.1:0),
// and waits until /readyz says it takes jobs. It returns the address serve
// logged that it serves /metrics on, and serve's logs.
func startServe(t *testing.T, args ...string) (metricsAddr string, logs *workertest.LogBuffer) {
	t.Helper()
	logs = &workertest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var code int
	args = append([]string{"serve", "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", t.TempDir()}, args...)
	go func() { code = run(ctx, args, io.Discard, logs); close(exited) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
			if code != 0 {
				t.Errorf("serve exited %d; logs:\n%s", code, logs)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not drain and exit within 30s")
		}
	})
	ready := workertest.Eventually(60*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("serve exited early with %d; logs:\n%s", code, logs)
		default:
		}
		if metricsAddr == "" {
			if metricsAddr = loggedField(logs, "serving /metrics, /healthz and /readyz", "addr"); metricsAddr == "" {
				return false
			}
		}
		res, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("serve never became ready; logs:\n%s", logs)
	}
	return metricsAddr, logs
}

// loggedField returns the string field of the first JSON log line with
// message, or "" when there is none yet.
func loggedField(logs *workertest.LogBuffer, message, field string) string {
	for _, line := range logs.Lines() {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil || e["message"] != message {
			continue
		}
		v, _ := e[field].(string)
		return v
	}
	return ""
}

func TestServeDevelopmentModeAndCall(t *testing.T) {
	ns := workertest.StartNATS(t)
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
		// Refused by call itself, as the worker would refuse it: never sent.
		{"invalid request", []string{"call", "search", "--nats-url", url, "--file", "-"}, `{"id":"bad-1","query":"SELECT Id FROM Contact","bogus":1}`, 1, "failed", "INVALID_REQUEST"},
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
			wantAttempt := 1
			if tt.name == "invalid request" {
				wantAttempt = 0 // not run
			}
			if reply.Status != tt.wantStatus || reply.ID == "" || reply.Attempt != wantAttempt {
				t.Errorf("reply status %q id %q attempt %d, want status %q", reply.Status, reply.ID, reply.Attempt, tt.wantStatus)
			}
			if !strings.Contains(out, tt.wantInOut) {
				t.Errorf("reply does not contain %q:\n%s", tt.wantInOut, out)
			}
		})
	}

	// One log event per job outcome, with no record values at info level.
	if n := strings.Count(logs.String(), `"message":"job done"`); n != len(tests)-1 {
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
	workertest.Eventually(15*time.Second, func() bool {
		code, out, errOut := runCmd(t, ctx, "status", "--nats-url", url, "--json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		statuses = nil
		if err := json.Unmarshal([]byte(out), &statuses); err != nil {
			t.Fatalf("status --json: %v: %s", err, out)
		}
		return len(statuses) == 1 && statuses[0].Token.State == "valid" && statuses[0].APIUsed > 0
	})
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
		`sfblocks_salesforce_requests_total{code="200",kind="token",method="post"} 1`, `sfblocks_salesforce_api_used_requests{account="dev"}`} {
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
		{[]string{"accounts", "check", "--no-nats", "--sim-addr", "127.0.0.1:1"}, 1, "no --config: checking development mode's account 'dev'"},
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
	ns := workertest.StartNATS(t)
	sim := workertest.StartSim(t, sfsim.Options{})
	_, key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SFBLOCKS_TOKEN_KEY", key)
	t.Setenv("SIM_SECRET", sfsim.DefaultClientSecret)
	// Port 0: authorize listens on a port the system picks and prints the
	// URL that carries it.
	callback := "http://127.0.0.1:0/oauth/callback"
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
	var rest strings.Builder // the rest of authorize's output
	restDone := make(chan struct{})
	go func() {
		defer close(restDone)
		for sc.Scan() {
			rest.WriteString(sc.Text() + "\n")
		}
	}()
	if authURL == "" {
		t.Fatalf("authorize printed no URL; stderr: %s", authErr.String())
	}
	// authorize listens before it prints the URL.
	res, err := http.Get(authURL)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if code := <-done; code != 0 || !strings.Contains(string(page), "authorized") {
		t.Fatalf("authorize exit %d, page %q, stderr %s", code, page, authErr.String())
	}
	<-restDone
	au, _ := url.Parse(authURL)
	if ru := au.Query().Get("redirect_uri"); strings.Contains(ru, ":0/") || !strings.Contains(rest.String(), "Waiting for the callback on "+ru+" ") {
		t.Errorf("authorize on port 0: redirect_uri %q; want the port it listens on, printed:\n%s", ru, rest.String())
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
