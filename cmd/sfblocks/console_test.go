package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

	for name, l := range map[string]*workertest.LogBuffer{"serve": logs, "console": clogs} {
		for _, file := range []string{tokenFile, ctokenFile} {
			tok, _ := os.ReadFile(file)
			if s := strings.TrimSpace(string(tok)); s != "" && strings.Contains(l.String(), s) {
				t.Errorf("%s logged a console token", name)
			}
		}
	}
}
