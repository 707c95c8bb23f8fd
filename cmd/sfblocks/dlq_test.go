package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// seedRefreshToken stores a fresh refresh token for account, as a completed
// `sfblocks authorize` would, and returns it.
func seedRefreshToken(t *testing.T, store *auth.KVStore, sim *sfsim.Server, account string) string {
	t.Helper()
	it := sim.IssueToken("api refresh_token")
	if _, err := store.Put(context.Background(), account, &auth.Record{AccessToken: auth.Secret(it.AccessToken),
		RefreshToken: auth.Secret(it.RefreshToken), InstanceURL: it.InstanceURL, IssuedAt: it.IssuedAt}); err != nil {
		t.Fatal(err)
	}
	return it.RefreshToken
}

// dlqCmd runs `sfblocks dlq ...` in-process against natsURL.
func dlqCmd(t *testing.T, natsURL string, args ...string) (int, string, string) {
	t.Helper()
	return runCmd(t, context.Background(), append(append([]string{"dlq"}, args...), "--nats-url", natsURL)...)
}

// listDeadLetters returns the dead letters `dlq ls --json` prints for the filter args.
func listDeadLetters(t *testing.T, natsURL string, args ...string) []sfblocks.DeadLetter {
	t.Helper()
	code, out, errOut := dlqCmd(t, natsURL, append([]string{"ls", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("dlq ls: exit %d: %s", code, errOut)
	}
	var got struct {
		Stream      client.DLQInfo        `json:"stream"`
		DeadLetters []sfblocks.DeadLetter `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("dlq ls --json: %v\n%s", err, out)
	}
	if got.Stream.MaxAge != worker.DefaultDLQMaxAge {
		t.Errorf("retention %v, want the default %v", got.Stream.MaxAge, worker.DefaultDLQMaxAge)
	}
	return got.DeadLetters
}

// A revoked refresh token sends jobs to the dead-letter stream with
// AUTH_FAILED; after re-authorization `dlq replay` completes each exactly
// once. Then the CLI's other paths: show, dry-run, rate, edited payload,
// replaying a job whose success is kept, filters, purge.
func TestDLQRevokedTokenReplayAndCLI(t *testing.T) {
	ns := workertest.StartNATS(t)
	natsURL := ns.ClientURL()
	sim := workertest.StartSim(t, sfsim.Options{})
	cipher, key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SFBLOCKS_TOKEN_KEY", key)
	t.Setenv("SIM_SECRET", sfsim.DefaultClientSecret)
	cfg := writeConfig(t, map[string]any{"name": "prod", "default": true, "login_url": sim.LoginURL(), "client_id": sfsim.DefaultClientID,
		"client_secret": "env:SIM_SECRET", "flow": "web_server"})

	nc, js := workertest.JetStream(t, ns)
	store, err := auth.NewKVStore(context.Background(), js, auth.KVStoreConfig{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	refresh := seedRefreshToken(t, store, sim, "prod")
	startServe(t, "--nats-url", natsURL, "--config", cfg, "--max-attempts", "3", "--retry-backoff", "20ms", "--max-retry-backoff", "50ms")
	c, err := client.New(nc, client.WithTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	// Salesforce revokes the refresh token (and the sessions minted with it).
	res, err := http.PostForm(sim.LoginURL()+"/services/oauth2/revoke", url.Values{"token": {refresh}})
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", res, err)
	}
	res.Body.Close()

	// Upserts and plain creates, durable: each fails AUTH_FAILED (not
	// retryable) and is dead-lettered at once.
	const n = 6
	jobs := make([]map[string]any, n)
	for i := range jobs {
		jobs[i] = map[string]any{"id": fmt.Sprintf("call-%d", i), "object": "Task", "fields": map[string]any{"Subject": fmt.Sprintf("Call %d", i)}}
		if i%2 == 0 {
			jobs[i]["external_id"] = map[string]any{"field": "External_Id__c", "value": fmt.Sprintf("call-log-%d", i)}
		}
	}
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := c.DoDurable(context.Background(), sfblocks.Insert, job)
			if rep == nil || rep.Error == nil || rep.Error.Code != sfblocks.CodeAuthFailed {
				t.Errorf("job %v: reply %+v, %v; want AUTH_FAILED", job["id"], rep, err)
			}
		}()
	}
	wg.Wait()
	dls := listDeadLetters(t, natsURL, "--code", "AUTH_FAILED", "--account", "prod")
	if len(dls) != n {
		t.Fatalf("%d AUTH_FAILED dead letters, want %d", len(dls), n)
	}
	for _, dl := range dls {
		if dl.Reason != sfblocks.ReasonPermanent || dl.Attempts != 1 || dl.Path != "durable" {
			t.Errorf("dead letter %+v", dl)
		}
	}
	if got := listDeadLetters(t, natsURL, "--block", "search"); len(got) != 0 {
		t.Errorf("--block search lists %d", len(got))
	}
	if got := listDeadLetters(t, natsURL, "--since", "1h", "--until", "2h"); len(got) != 0 {
		t.Errorf("an empty time range lists %d", len(got))
	}
	code, out, _ := dlqCmd(t, natsURL, "ls")
	if code != 0 || !strings.Contains(out, "SFBLOCKS_DLQ: 6 dead letters, kept 720h0m0s") || strings.Count(out, "AUTH_FAILED") != n {
		t.Errorf("dlq ls table:\n%s", out)
	}
	code, out, _ = dlqCmd(t, natsURL, "show", "call-0")
	var shown sfblocks.DeadLetter
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.JobID != "call-0" || shown.Error.Code != sfblocks.CodeAuthFailed || shown.Seq == 0 {
		t.Fatalf("dlq show call-0: %d\n%s", code, out)
	}
	if code, out, _ := dlqCmd(t, natsURL, "show", fmt.Sprintf("seq:%d", shown.Seq)); code != 0 || !strings.Contains(out, `"job_id": "call-0"`) {
		t.Errorf("dlq show by sequence: %d\n%s", code, out)
	}

	// Dry run: nothing published.
	code, out, _ = dlqCmd(t, natsURL, "replay", "--code", "AUTH_FAILED", "--dry-run")
	if code != 0 || !strings.Contains(out, "would replay 6") || sim.Stats().RecordsCreated != 0 || len(listDeadLetters(t, natsURL)) != n {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	// Refusals: replay without a selection, show without an ID.
	if code, _, errOut := dlqCmd(t, natsURL, "replay"); code != 1 || !strings.Contains(errOut, "--all") {
		t.Errorf("replay without selection: %d %s", code, errOut)
	}

	// Re-authorize, then replay at a bounded rate: each job runs once.
	seedRefreshToken(t, store, sim, "prod")
	code, out, errOut := dlqCmd(t, natsURL, "replay", "--code", "AUTH_FAILED", "--rate", "50/s")
	if code != 0 || !strings.Contains(out, "replayed 6: succeeded 6, failed again 0, skipped 0") {
		t.Fatalf("replay: %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "replay: 6/6 done") {
		t.Errorf("no progress lines on stderr: %q", errOut)
	}
	created := sim.Stats().RecordsCreated
	if created != n || len(listDeadLetters(t, natsURL)) != 0 {
		t.Errorf("records created %d, want %d; dead letters left %d", created, n, len(listDeadLetters(t, natsURL)))
	}

	// A dead letter of a job whose success is kept: the replay is answered
	// from the kept result and creates nothing.
	envelope, _ := json.Marshal(shown)
	if _, err := js.Publish(context.Background(), sfblocks.DLQSubject(sfblocks.DefaultPrefix, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "call-0"}), envelope); err != nil {
		t.Fatal(err)
	}
	code, out, _ = dlqCmd(t, natsURL, "replay", "call-0")
	if code != 0 || !strings.Contains(out, "succeeded 1") || sim.Stats().RecordsCreated != created {
		t.Errorf("replay of a kept success: %d, records %d -> %d\n%s", code, created, sim.Stats().RecordsCreated, out)
	}

	// A permanent failure fixed with an edited payload.
	rep, _ := c.DoDurable(context.Background(), sfblocks.Insert, map[string]any{"id": "contact-1", "object": "Contact", "fields": map[string]any{"FirstName": "Ada"}})
	if rep == nil || rep.Error == nil || rep.Error.SalesforceCode != "REQUIRED_FIELD_MISSING" {
		t.Fatalf("reply %+v", rep)
	}
	// Replayed unchanged, it fails again and keeps one (fresh) dead letter.
	code, out, _ = dlqCmd(t, natsURL, "replay", "contact-1", "--json")
	var sum client.ReplaySummary
	if code != 1 || json.Unmarshal([]byte(out), &sum) != nil || sum.FailedAgain != 1 {
		t.Errorf("replay unchanged: %d\n%s", code, out)
	}
	again := listDeadLetters(t, natsURL, "--code", "SALESFORCE_ERROR")
	if len(again) != 1 || again[0].Replays != 1 || again[0].ReplayOf == 0 {
		t.Fatalf("after a failed replay: %+v", again)
	}
	fixed := filepath.Join(t.TempDir(), "fixed.json")
	if err := os.WriteFile(fixed, []byte(`{"object":"Contact","fields":{"FirstName":"Ada","LastName":"Lovelace"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = dlqCmd(t, natsURL, "replay", "contact-1", "--payload", fixed)
	if code != 0 || !strings.Contains(out, "succeeded 1") || sim.Stats().RecordsCreated != created+1 {
		t.Errorf("replay with an edited payload: %d\n%s", code, out)
	}
	if kept, err := c.Result(context.Background(), sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "contact-1"}); err != nil || kept.Status != sfblocks.StatusOK {
		t.Errorf("kept result of contact-1: %+v %v", kept, err)
	}

	// Synchronous insert failures are dead-lettered; purge asks first.
	for i := 0; i < 2; i++ {
		_, _ = c.Do(context.Background(), sfblocks.Insert, map[string]any{"id": fmt.Sprintf("sync-%d", i), "object": "Contact", "fields": map[string]any{}})
	}
	workertest.WaitFor(t, 10*time.Second, "the two sync dead letters", func() bool {
		return len(listDeadLetters(t, natsURL, "--block", "insert")) >= 2
	})
	stdinConfirm = strings.NewReader("no\n")
	t.Cleanup(func() { stdinConfirm = os.Stdin })
	if code, _, errOut := dlqCmd(t, natsURL, "purge", "--all"); code != 1 || !strings.Contains(errOut, "type yes") || len(listDeadLetters(t, natsURL)) != 2 {
		t.Errorf("purge not confirmed: %d %s", code, errOut)
	}
	stdinConfirm = strings.NewReader("yes\n")
	if code, out, _ := dlqCmd(t, natsURL, "purge", "sync-0"); code != 0 || !strings.Contains(out, "purged 1") {
		t.Errorf("purge sync-0: %d %s", code, out)
	}
	if code, out, _ := dlqCmd(t, natsURL, "purge", "--all", "--yes"); code != 0 || !strings.Contains(out, "purged 1") || len(listDeadLetters(t, natsURL)) != 0 {
		t.Errorf("purge --all: %d %s", code, out)
	}
	t.Logf("jobs sent %d, answered %d, retried 0, dead-lettered %d (+1 replay that failed again, +2 sync), replayed %d, records created %d",
		n+1, n+1, n+1, n+3, sim.Stats().RecordsCreated)
}
