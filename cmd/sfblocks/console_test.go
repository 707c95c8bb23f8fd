package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/deploy"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// A console without an operator token never starts, except in
// development mode on a loopback address; and the other refusals say what
// to do.
func TestConsoleRefusals(t *testing.T) {
	ns := workertest.StartNATS(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("a-token-from-a-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, map[string]any{"name": "prod", "default": true, "flow": "client_credentials",
		"login_url": "http://127.0.0.1:1", "consumer_key": "k", "consumer_secret": "s"})
	tests := []struct {
		name    string
		env     string
		args    []string
		wantErr string
	}{
		{"no token", "", []string{"console", "--nats-url", ns.ClientURL()}, "the console needs an operator token: export SFBLOCKS_CONSOLE_TOKEN"},
		{"dev mode off loopback", "", []string{"console", "--dev", "--addr", "0.0.0.0:0", "--nats-url", ns.ClientURL()}, "only on a loopback address"},
		{"short token", "short", []string{"console", "--nats-url", ns.ClientURL()}, "use at least 16"},
		{"token twice", "console-test-token-0123456789", []string{"console", "--token-file", tokenFile, "--nats-url", ns.ClientURL()}, "keep one"},
		{"missing token file", "", []string{"console", "--token-file", filepath.Join(t.TempDir(), "none"), "--nats-url", ns.ClientURL()}, "reading the console token file"},
		{"certificate without key", "console-test-token-0123456789", []string{"console", "--addr", "127.0.0.1:0", "--tls-cert", "cert.pem", "--nats-url", ns.ClientURL()}, "give both, or neither"},
		{"bad trusted origin", "console-test-token-0123456789", []string{"console", "--addr", "127.0.0.1:0", "--trusted-origin", "console.example.com", "--nats-url", ns.ClientURL()}, "scheme://host"},
		{"serve with a config and no token", "", []string{"serve", "--config", cfg, "--console-addr", "127.0.0.1:0", "--nats-url", ns.ClientURL()}, "the console needs an operator token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SFBLOCKS_CONSOLE_TOKEN", tt.env)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, _, errOut := runCmd(t, ctx, tt.args...)
			if code != 1 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("sfblocks %v: exit %d, stderr %q; want 1 and %q", tt.args, code, errOut, tt.wantErr)
			}
		})
	}
}

// consoleSession logs in to the console at base with the token in file,
// and returns a client that holds the session.
func consoleSession(t *testing.T, base, file string) *http.Client {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the token file %s: %v, mode %v; want 0600", file, err, fi.Mode())
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	res, err := hc.PostForm(base+"login", url.Values{"token": {strings.TrimSpace(string(data))}, "next": {"/dlq"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/dlq" || !strings.Contains(string(body), "<h1>Dead letters</h1>") {
		t.Fatalf("login at %s: %d at %s\n%s", base, res.StatusCode, res.Request.URL, body)
	}
	return hc
}

// page fetches a page of the session's console.
func page(t *testing.T, hc *http.Client, u string) string {
	t.Helper()
	res, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, res.StatusCode, body)
	}
	return string(body)
}

// In development mode, `serve --console-addr` and `console --dev` run
// without a token of the operator's: each makes one, writes it to a file
// of its own and logs the file's path, never the token. Both consoles show
// the development worker.
func TestServeAndConsoleCommandServeTheConsole(t *testing.T) {
	t.Setenv("SFBLOCKS_CONSOLE_TOKEN", "")
	_, logs := startServe(t, "--console-addr", "127.0.0.1:0", "--embedded-nats-addr", "127.0.0.1:0")
	base := loggedField(logs, "serving the console", "url")
	tokenFile := loggedField(logs, "development mode: no SFBLOCKS_CONSOLE_TOKEN is set, so the console made a token for this run; log in with the content of token_file. Set SFBLOCKS_CONSOLE_TOKEN anywhere else", "token_file")
	if base == "" || tokenFile == "" {
		t.Fatalf("serve did not log the console's address and token file:\n%s", logs)
	}
	hc := consoleSession(t, base, tokenFile)
	var body string
	workertest.WaitFor(t, 20*time.Second, "the Accounts page to show the dev account", func() bool {
		body = page(t, hc, base)
		return strings.Contains(body, `id="account-dev"`)
	})
	if body := page(t, hc, base+"workers"); !strings.Contains(body, "1</span> workers answering") {
		t.Errorf("the Workers page of serve's console:\n%s", body)
	}

	// `sfblocks console --dev` against the same NATS server.
	natsURL := loggedField(logs, "no --nats-url given: started an embedded NATS server with JetStream (development mode)", "url")
	clogs := &workertest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"console", "--dev", "--addr", "127.0.0.1:0", "--log-format", "json", "--nats-url", natsURL}, io.Discard, clogs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("console exited %d:\n%s", code, clogs)
			}
		case <-time.After(20 * time.Second):
			t.Error("console did not stop within 20s")
		}
	})
	var cbase, ctokenFile string
	workertest.WaitFor(t, 20*time.Second, "the console command to serve", func() bool {
		cbase = loggedField(clogs, "serving the console", "url")
		ctokenFile = loggedField(clogs, "development mode: no SFBLOCKS_CONSOLE_TOKEN is set, so the console made a token for this run; log in with the content of token_file. Set SFBLOCKS_CONSOLE_TOKEN anywhere else", "token_file")
		return cbase != "" && ctokenFile != ""
	})
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(ctokenFile)) })
	chc := consoleSession(t, cbase, ctokenFile)
	workertest.WaitFor(t, 20*time.Second, "the console command's Accounts page to show the dev account", func() bool {
		return strings.Contains(page(t, chc, cbase), `id="account-dev"`)
	})

	// No page shows the development account's consumer secret, nor a
	// console's token.
	tok, _ := os.ReadFile(tokenFile)
	for _, path := range []string{"", "workers", "dlq", "jobs?id=any", "jobs?block=insert&id=any&account=dev"} {
		body := page(t, hc, base+path)
		if strings.Contains(body, sfsim.DefaultClientSecret) || strings.Contains(body, strings.TrimSpace(string(tok))) {
			t.Errorf("/%s shows a secret", path)
		}
	}
	for name, l := range map[string]*workertest.LogBuffer{"serve": logs, "console": clogs} {
		for _, file := range []string{tokenFile, ctokenFile} {
			tok, _ := os.ReadFile(file)
			if s := strings.TrimSpace(string(tok)); s != "" && strings.Contains(l.String(), s) {
				t.Errorf("%s logged a console token", name)
			}
		}
	}
}

// `sfblocks console` as the operator of nats-roles.conf, against a worker
// in the worker role: the Accounts, Workers and Dead letters pages, one
// envelope and a replay with an edited payload, without a single
// permissions violation. The Job page reads buckets the operator may not
// read; it says so.
func TestConsoleUnderOperatorRole(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	startServe(t, append(roleFlags(ns, deploy.WorkerUser), "--sim-addr", "127.0.0.1:0")...)
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"))
	c, err := client.New(tenant, client.WithTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, _ := c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "console-role-1", Object: "Contact", Fields: map[string]any{"FirstName": "Ada"}})
	if rep == nil || rep.Error == nil || rep.Error.SalesforceCode != "REQUIRED_FIELD_MISSING" {
		t.Fatalf("failing durable insert: %+v", rep)
	}

	tokenFile := filepath.Join(t.TempDir(), "console-token")
	if err := os.WriteFile(tokenFile, []byte("console-role-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &workertest.LogBuffer{}
	cctx, cancel := context.WithCancel(ctx)
	exited := make(chan int, 1)
	args := append([]string{"console", "--addr", "127.0.0.1:0", "--token-file", tokenFile, "--log-format", "json"}, roleFlags(ns, deploy.OperatorUser)...)
	go func() { exited <- run(cctx, args, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("console exited %d:\n%s", code, logs)
		}
	})
	var base string
	workertest.WaitFor(t, 20*time.Second, "the console to serve", func() bool {
		base = loggedField(logs, "serving the console", "url")
		return base != ""
	})
	hc := consoleSession(t, base, tokenFile)
	workertest.WaitFor(t, 20*time.Second, "the Accounts page to show the dev account", func() bool {
		body := page(t, hc, base)
		ok := strings.Contains(body, `id="account-dev"`) && strings.Contains(body, "1</span> dead letters") && !strings.Contains(body, "could not be read")
		if !ok {
			t.Log(body)
		}
		return ok
	})
	if body := page(t, hc, base+"workers"); !strings.Contains(body, "1</span> workers answering") {
		t.Errorf("the Workers page:\n%s", body)
	}
	body := page(t, hc, base+"dlq?sf_code=REQUIRED_FIELD_MISSING")
	m := regexp.MustCompile(`name="seqs" value="(\d+)"`).FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		t.Fatalf("the Dead letters page lists %d, want 1:\n%s", len(m), body)
	}
	if body := page(t, hc, base+"dlq/"+m[0][1]); !strings.Contains(body, "Required fields are missing") {
		t.Errorf("the dead letter's page:\n%s", body)
	}
	csrf := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatalf("no CSRF token:\n%s", body)
	}
	res, err := hc.PostForm(base+"dlq/action", url.Values{"csrf": {csrf[1]}, "op": {"replay"}, "scope": {"one"}, "seq": {m[0][1]},
		"payload": {`{"object":"Contact","fields":{"FirstName":"Ada","LastName":"Lovelace"}}`}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	action := res.Request.URL.String()
	workertest.WaitFor(t, 30*time.Second, "the replay to succeed", func() bool {
		return strings.Contains(page(t, hc, action), "Done.")
	})
	if body := page(t, hc, action); !strings.Contains(body, `id="succeeded">1<`) {
		t.Errorf("the replay's page:\n%s", body)
	}
	noViolations(t, ns)

	body = page(t, hc, base+"jobs?block=insert&id=console-role-1")
	if !strings.Contains(body, "may not be allowed to read") {
		t.Errorf("the Job page under the operator role does not say what it may not read:\n%s", body)
	}
}
