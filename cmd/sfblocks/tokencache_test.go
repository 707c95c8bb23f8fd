package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestAccountsReset: `accounts check` shows a client_credentials account
// that Salesforce refuses for now as RETRYING, and sends no request again
// within the backoff; `accounts reset ACCOUNT` clears the refusal, and
// the next check gets a token. A refresh token refused for good is
// presented again after a reset, and refused again. A client_credentials
// record that the key cannot open is replaced; a web_server one is not.
func TestAccountsReset(t *testing.T) {
	ns := workertest.StartNATS(t)
	natsURL := ns.ClientURL()
	sim := workertest.StartSim(t, sfsim.Options{})
	cipher, key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SFBLOCKS_TOKEN_KEY", key)
	t.Setenv("SIM_SECRET", sfsim.DefaultClientSecret)
	cfg := writeConfig(t,
		map[string]any{"name": "prod", "default": true, "login_url": sim.LoginURL(), "client_id": sfsim.DefaultClientID,
			"client_secret": "env:SIM_SECRET", "flow": "web_server"},
		map[string]any{"name": "backoffice", "login_url": sim.MyDomainURL(), "client_id": sfsim.DefaultClientID,
			"client_secret": "env:SIM_SECRET", "flow": "client_credentials"},
	)
	ctx := context.Background()
	_, js := workertest.JetStream(t, ns)
	store, err := auth.NewKVStore(ctx, js, auth.KVStoreConfig{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	rt := seedRefreshToken(t, store, sim, "prod")
	check := func() (int, string) {
		t.Helper()
		code, out, errOut := runCmd(t, ctx, "accounts", "check", "--config", cfg, "--nats-url", natsURL)
		return code, out + errOut
	}
	reset := func(name string) (int, string) {
		t.Helper()
		code, out, errOut := runCmd(t, ctx, "accounts", "reset", name, "--config", cfg, "--nats-url", natsURL)
		return code, out + errOut
	}
	requests := func() int64 { return sim.Stats().TokenRequests }

	// Client credentials refused, as while the app's policy propagates.
	if err := sim.Faults().RefuseClientCredentials(&sfsim.GrantRefusal{}); err != nil {
		t.Fatal(err)
	}
	retrying := regexp.MustCompile(`backoffice\s+client_credentials\s+RETRYING AUTH_RETRYING \(next try \d\d:\d\d:\d\d\): .*no client credentials user enabled.*sfblocks accounts reset backoffice`)
	if code, out := check(); code != 1 || !retrying.MatchString(out) || !regexp.MustCompile(`prod \(default\)\s+web_server\s+ok`).MatchString(out) {
		t.Fatalf("check while refused: exit %d\n%s", code, out)
	}
	// Allowed now, but the fleet waits out the backoff: no request.
	_ = sim.Faults().RefuseClientCredentials(nil)
	before := requests()
	code, out, _ := runCmd(t, ctx, "accounts", "check", "--config", cfg, "--nats-url", natsURL, "--json")
	var checks []accountCheck
	if err := json.Unmarshal([]byte(out), &checks); err != nil || code != 1 || len(checks) != 2 || checks[1].ErrorCode != auth.CodeAuthRetrying || checks[1].RetryAt == nil || !checks[1].RetryAt.After(time.Now()) {
		t.Fatalf("check --json within the backoff: exit %d, %v\n%s", code, err, out)
	}
	if n := requests() - before; n != 0 {
		t.Fatalf("%d token requests within the backoff", n)
	}
	if code, out := reset("backoffice"); code != 0 || !strings.Contains(out, `Account "backoffice": cleared the refused credential, being retried with backoff (AUTH_RETRYING, 1 refusals)`) {
		t.Fatalf("reset: exit %d\n%s", code, out)
	}
	if code, out := check(); code != 0 || !regexp.MustCompile(`backoffice\s+client_credentials\s+ok`).MatchString(out) {
		t.Fatalf("check after reset: exit %d\n%s", code, out)
	}
	if code, out := reset("backoffice"); code != 0 || !strings.Contains(out, "has no refused credential; nothing to reset") {
		t.Fatalf("second reset: exit %d\n%s", code, out)
	}

	// A revoked refresh token is final; a reset presents it once more.
	resp, err := http.PostForm(sim.LoginURL()+"/services/oauth2/revoke", url.Values{"token": {rt}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	sim.ExpireAllSessions()
	failed := regexp.MustCompile(`prod \(default\)\s+web_server\s+FAILED AUTH_FAILED: .*sfblocks authorize --account prod`)
	for range 2 {
		if code, out := check(); code != 1 || !failed.MatchString(out) {
			t.Fatalf("check with a revoked refresh token: exit %d\n%s", code, out)
		}
	}
	before = requests()
	if code, out := reset("prod"); code != 0 || !strings.Contains(out, "refused for good (AUTH_FAILED)") {
		t.Fatalf("reset prod: exit %d\n%s", code, out)
	}
	if code, out := check(); code != 1 || !failed.MatchString(out) || requests()-before != 1 {
		t.Fatalf("check after resetting a revoked token: exit %d, %d requests\n%s", code, requests()-before, out)
	}

	// The fleet's key is lost: a client_credentials record is replaced,
	// a web_server one is not.
	other, _, _ := auth.GenerateKey()
	lost, err := auth.NewKVStore(ctx, js, auth.KVStoreConfig{Cipher: other})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prod", "backoffice"} {
		if _, err := lost.Put(ctx, name, &auth.Record{AccessToken: "x", RefreshToken: "y"}); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := reset("backoffice"); code != 0 || !strings.Contains(out, "replaced by an empty record") {
		t.Fatalf("reset of an unreadable client_credentials record: exit %d\n%s", code, out)
	}
	if code, out := reset("prod"); code != 1 || !strings.Contains(out, "TOKEN_KEY_MISMATCH") || !strings.Contains(out, "sfblocks authorize --account prod") {
		t.Fatalf("reset of an unreadable web_server record: exit %d\n%s", code, out)
	}
	if code, out := check(); code != 1 || !regexp.MustCompile(`backoffice\s+client_credentials\s+ok`).MatchString(out) {
		t.Fatalf("check after replacing: exit %d\n%s", code, out)
	}
	for _, tt := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"accounts", "reset", "nope", "--config", cfg, "--nats-url", natsURL}, 1, "UNKNOWN_ACCOUNT"},
		{[]string{"accounts", "reset", "--config", cfg}, 2, "give exactly one ACCOUNT"},
		{[]string{"accounts", "reset", "--config", cfg, "--nats-url", natsURL, "backoffice", "prod"}, 2, "give exactly one ACCOUNT"},
	} {
		if code, out, errOut := runCmd(t, ctx, tt.args...); code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("sfblocks %v: exit %d\n%s%s", tt.args, code, out, errOut)
		}
	}
}

// serveUntilReadyz runs 'sfblocks serve' until the test ends (or stop is
// called) and returns once /readyz answers with a body that contains
// want; it returns the status, the body and serve's logs.
func serveUntilReadyz(t *testing.T, want string, args ...string) (int, string, *workertest.LogBuffer, func()) {
	t.Helper()
	logs := &workertest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	args = append([]string{"serve", "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", t.TempDir()}, args...)
	go func() { exited <- run(ctx, args, io.Discard, logs) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("serve exited %d; logs:\n%s", code, logs)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not exit within 30s")
		}
	}
	t.Cleanup(stop)
	var status int
	var body string
	ok := workertest.Eventually(20*time.Second, func() bool {
		addr := loggedField(logs, "serving /metrics, /healthz and /readyz", "addr")
		if addr == "" || loggedField(logs, "worker taking jobs", "queue_group") == "" {
			return false
		}
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		status, body = res.StatusCode, string(b)
		// "not ready: …" contains "ready" too.
		return strings.Contains(body, want) && (want != "ready" || status == http.StatusOK)
	})
	if !ok {
		t.Fatalf("/readyz never said %q (last %d %q); logs:\n%s", want, status, body, logs)
	}
	return status, body, logs, stop
}

// TestServeTokenKey: a worker started with a key other than the fleet's
// logs one error naming the fix, is not ready with the reason, and answers
// jobs AUTH_FAILED, not retryable, saying what is wrong. Started with the
// new key and the fleet's as SFBLOCKS_TOKEN_KEY_PREVIOUS, it is ready, its
// jobs succeed through a refresh, and no account is authorized again.
func TestServeTokenKey(t *testing.T) {
	ns := workertest.StartNATS(t)
	natsURL := ns.ClientURL()
	sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true})
	fleetKey, fleetB64, _ := auth.GenerateKey()
	newKey, newB64, _ := auth.GenerateKey()
	t.Setenv("SIM_SECRET", sfsim.DefaultClientSecret)
	cfg := writeConfig(t, map[string]any{"name": "prod", "default": true, "login_url": sim.LoginURL(), "client_id": sfsim.DefaultClientID,
		"client_secret": "env:SIM_SECRET", "flow": "web_server"})
	ctx := context.Background()
	_, js := workertest.JetStream(t, ns)
	fleet, err := auth.NewKVStore(ctx, js, auth.KVStoreConfig{Cipher: fleetKey})
	if err != nil {
		t.Fatal(err)
	}
	seedRefreshToken(t, fleet, sim, "prod")
	search := []string{"call", "search", "--nats-url", natsURL, "--query", "SELECT Id FROM Contact LIMIT 1"}

	// The wrong key.
	t.Setenv("SFBLOCKS_TOKEN_KEY", newB64)
	status, body, logs, stop := serveUntilReadyz(t, "TOKEN_KEY_MISMATCH", "--nats-url", natsURL, "--config", cfg)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "SFBLOCKS_TOKEN_KEY") || !strings.Contains(body, fleetKey.KeyID()) {
		t.Fatalf("/readyz = %d %q; want 503 naming the key ids and the fix", status, body)
	}
	requests := sim.Stats().TokenRequests
	for range 3 {
		code, out, errOut := runCmd(t, ctx, search...)
		var reply sfblocks.Reply
		if err := json.Unmarshal([]byte(out), &reply); err != nil || code != 1 || reply.Error == nil {
			t.Fatalf("job: exit %d %v\n%s%s", code, err, out, errOut)
		}
		if e := reply.Error; e.Code != sfblocks.CodeAuthFailed || e.Retryable || !strings.Contains(e.Message, "SFBLOCKS_TOKEN_KEY") || strings.Contains(e.Message, "retry later") {
			t.Fatalf("job error %+v; want AUTH_FAILED, not retryable, naming SFBLOCKS_TOKEN_KEY", e)
		}
	}
	var errorLines []string
	for _, l := range logs.Lines() {
		if strings.Contains(l, `"level":"error"`) {
			errorLines = append(errorLines, l)
		}
	}
	if len(errorLines) != 1 || !strings.Contains(errorLines[0], "SFBLOCKS_TOKEN_KEY") || !strings.Contains(errorLines[0], `"accounts":["prod"]`) {
		t.Fatalf("%d error log lines; want one naming the account and the fix:\n%s", len(errorLines), strings.Join(errorLines, "\n"))
	}
	if sim.Stats().TokenRequests != requests {
		t.Fatal("the worker with the wrong key sent token requests")
	}
	stop()

	// The key rotated: the new key, and the fleet's as the previous one.
	t.Setenv("SFBLOCKS_TOKEN_KEY_PREVIOUS", fleetB64)
	_, _, logs, _ = serveUntilReadyz(t, "ready", "--nats-url", natsURL, "--config", cfg)
	sim.ExpireAllSessions()
	if code, out, errOut := runCmd(t, ctx, search...); code != 0 {
		t.Fatalf("job after the rotation: exit %d\n%s%s\nlogs:\n%s", code, out, errOut, logs)
	}
	st := sim.Stats()
	if st.TokenGrants["refresh_token"] != 1 || st.TokenGrants["authorization_code"] != 0 || st.FamiliesRevoked != 0 {
		t.Fatalf("grants %v, families revoked %d; want one refresh and no authorization", st.TokenGrants, st.FamiliesRevoked)
	}
	// Re-sealed with the new key: it alone opens the record now.
	onlyNew, err := auth.NewKVStore(ctx, js, auth.KVStoreConfig{Cipher: newKey})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _, err := onlyNew.Load(ctx, "prod"); err != nil || rec.RefreshToken.IsZero() {
		t.Fatalf("the new key alone cannot open the record: %v", err)
	}
	for _, l := range logs.Lines() {
		for _, secret := range []string{fleetB64, newB64, sfsim.DefaultClientSecret} {
			if strings.Contains(l, secret) {
				t.Fatalf("a secret was logged: %s", l)
			}
		}
	}
}
