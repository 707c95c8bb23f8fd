package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// makeDeadLetters dead-letters, through the real worker: two Task
// Inserts refused with UNABLE_TO_LOCK_ROW (retryable, one attempt), three
// Contact Inserts missing LastName (REQUIRED_FIELD_MISSING), and one
// Search with a malformed query.
func makeDeadLetters(t *testing.T, f *fleet) {
	t.Helper()
	f.sim.Faults().LockNextWrites(2)
	for i := range 2 {
		f.publish(t, sfblocks.Insert, &sfblocks.InsertRequest{ID: fmt.Sprintf("locked-%d", i), Object: "Task",
			Fields: map[string]any{"Subject": fmt.Sprintf("console locked %d", i)}})
		f.deadLetters(t, i+1, client.DLQFilter{SalesforceCode: "UNABLE_TO_LOCK_ROW"})
	}
	for i := range 3 {
		f.publish(t, sfblocks.Insert, &sfblocks.InsertRequest{ID: fmt.Sprintf("contact-%d", i), Object: "Contact",
			Fields: map[string]any{"FirstName": fmt.Sprintf("Console%d", i)}})
	}
	f.deadLetters(t, 3, client.DLQFilter{SalesforceCode: "REQUIRED_FIELD_MISSING"})
	f.publish(t, sfblocks.Search, &sfblocks.SearchRequest{ID: "bad-query", Query: "SELECT Id FROM Contact WHERE"})
	f.deadLetters(t, 6, client.DLQFilter{})
}

var rowRe = regexp.MustCompile(`name="seqs" value="(\d+)"`)

// rows returns the sequences a list page shows.
func rows(body string) []string {
	var out []string
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// The whole dead-letter flow through the handlers: list, filters,
// everything a filter matches replayed after its confirmation, an edited
// payload, a selection purged, a replay that fails again; and no page
// carries a secret.
func TestDeadLetterPagesFilterReplayAndPurge(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	makeDeadLetters(t, f)
	f.login(t)

	code, body := f.get(t, "/dlq")
	if code != http.StatusOK || len(rows(body)) != 6 || !strings.Contains(body, "kept 30d") || !strings.Contains(body, "no cap on count or size") {
		t.Fatalf("/dlq: %d, %d rows\n%s", code, len(rows(body)), body)
	}
	filters := []struct {
		name  string
		query string
		want  int
	}{
		{"salesforce code", "sf_code=UNABLE_TO_LOCK_ROW", 2},
		{"salesforce code, lower case", "sf_code=required_field_missing", 3},
		{"block", "block=search", 1},
		{"code", "code=SALESFORCE_ERROR", 6},
		{"other code", "code=AUTH_FAILED", 0},
		{"account", "account=sim", 6},
		{"other account", "account=prod", 0},
		{"since", "since=1h", 6},
		{"until an hour ago", "until=1h", 0},
		{"time range", "since=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)) + "&until=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")), 6},
		{"two per page", "per=2&page=3", 2},
		{"past the last page", "per=4&page=9", 2},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.get(t, "/dlq?"+tt.query)
			if code != http.StatusOK || len(rows(body)) != tt.want {
				t.Errorf("/dlq?%s: %d, %d rows, want %d", tt.query, code, len(rows(body)), tt.want)
			}
		})
	}
	if _, body := f.get(t, "/dlq?per=2"); !strings.Contains(body, "page 1 of 3") || !strings.Contains(body, "Replay all 6 that match") {
		t.Errorf("paging of 6 by 2 does not say so, or the bulk button does not count them all:\n%s", body)
	}

	// The list names the stream's state, which /dlq/state answers cheaply:
	// the page refreshes itself only when it changes.
	stateOf := func() (page, answer string) {
		t.Helper()
		_, body := f.get(t, "/dlq")
		if m := regexp.MustCompile(`data-refresh-state="([^"]*)"`).FindStringSubmatch(body); m != nil {
			page = m[1]
		}
		_, js := f.get(t, "/dlq/state")
		var st struct{ State string }
		_ = json.Unmarshal([]byte(js), &st)
		return page, st.State
	}
	before, answer := stateOf()
	if before != "6:6" || answer != before {
		t.Errorf("the list's state %q, /dlq/state %q; want 6:6 for both", before, answer)
	}

	// Everything the filter matches: confirmed first, then replayed.
	tasks := f.count(t, "SELECT Id FROM Task WHERE Subject LIKE 'console locked%'")
	form := url.Values{"op": {"replay"}, "scope": {"filter"}, "sf_code": {"UNABLE_TO_LOCK_ROW"}, "back": {"/dlq?sf_code=UNABLE_TO_LOCK_ROW"}}
	code, body, _ = f.post(t, "/dlq/action", form)
	if code != http.StatusOK || !strings.Contains(body, "Replay 2 dead letters?") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("the confirmation: %d\n%s", code, body)
	}
	form.Set("confirm", "yes")
	_, _, loc := f.post(t, "/dlq/action", form)
	st := f.action(t, loc)
	if st["total"] != 2.0 || st["succeeded"] != 2.0 || st["failed_again"] != 0.0 || st["error"] != nil {
		t.Fatalf("replay of everything the filter matches: %v", st)
	}
	if n := f.count(t, "SELECT Id FROM Task WHERE Subject LIKE 'console locked%'"); n != tasks+2 {
		t.Errorf("%d Tasks after the replay, want %d", n, tasks+2)
	}
	if code, body := f.get(t, loc); code != http.StatusOK || !strings.Contains(body, "Done.") || strings.Count(body, ">succeeded<") != 2 {
		t.Errorf("the action's page: %d\n%s", code, body)
	}
	if _, body := f.get(t, "/dlq?sf_code=UNABLE_TO_LOCK_ROW"); len(rows(body)) != 0 || !strings.Contains(body, "No dead letter matches this filter") {
		t.Errorf("the filter still lists %d after the replay", len(rows(body)))
	}
	if after, answer := stateOf(); after != "4:6" || answer != after {
		t.Errorf("after the replay, the list's state %q, /dlq/state %q; want 4:6 for both", after, answer)
	}

	// One dead letter, its payload edited: refused while it is not JSON,
	// then replayed.
	dls := f.deadLetters(t, 3, client.DLQFilter{SalesforceCode: "REQUIRED_FIELD_MISSING"})
	seq := fmt.Sprint(dls[0].Seq)
	code, body = f.get(t, "/dlq/"+seq)
	if code != http.StatusOK || !strings.Contains(body, "Required fields are missing: [LastName]") || !strings.Contains(body, "&#34;FirstName&#34;: &#34;Console") {
		t.Fatalf("/dlq/%s: %d\n%s", seq, code, body)
	}
	code, body, _ = f.post(t, "/dlq/action", url.Values{"op": {"replay"}, "scope": {"one"}, "seq": {seq}, "payload": {`{"object": "Contact", "fields": {`}})
	if code != http.StatusBadRequest || !strings.Contains(body, "not valid JSON") || !strings.Contains(body, "{&#34;object&#34;: &#34;Contact&#34;, &#34;fields&#34;: {") {
		t.Errorf("an edited payload that is not JSON: %d\n%s", code, body)
	}
	edited := fmt.Sprintf(`{"object": "Contact", "fields": {"FirstName": "Console", "LastName": "Edited %s"}}`, seq)
	_, _, loc = f.post(t, "/dlq/action", url.Values{"op": {"replay"}, "scope": {"one"}, "seq": {seq}, "payload": {edited}})
	if st := f.action(t, loc); st["succeeded"] != 1.0 {
		t.Fatalf("replay with an edited payload: %v", st)
	}
	if n := f.count(t, fmt.Sprintf("SELECT Id FROM Contact WHERE LastName = 'Edited %s'", seq)); n != 1 {
		t.Errorf("%d Contacts of the edited payload, want 1", n)
	}

	// A selection purged, after its confirmation.
	dls = f.deadLetters(t, 2, client.DLQFilter{SalesforceCode: "REQUIRED_FIELD_MISSING"})
	purge := url.Values{"op": {"purge"}, "scope": {"selected"}, "seqs": {fmt.Sprint(dls[0].Seq), fmt.Sprint(dls[1].Seq)}}
	if code, body, _ := f.post(t, "/dlq/action", purge); code != http.StatusOK || !strings.Contains(body, "Purge 2 dead letters?") || !strings.Contains(body, "gone for good") {
		t.Fatalf("purge confirmation: %d\n%s", code, body)
	}
	purge.Set("confirm", "yes")
	_, _, loc = f.post(t, "/dlq/action", purge)
	if st := f.action(t, loc); st["purged"] != 2.0 {
		t.Fatalf("purge of a selection: %v", st)
	}

	// A replay that fails again leaves a fresh dead letter, and says so.
	bad := f.deadLetters(t, 1, client.DLQFilter{Block: sfblocks.Search})
	_, _, loc = f.post(t, "/dlq/action", url.Values{"op": {"replay"}, "scope": {"selected"}, "seqs": {fmt.Sprint(bad[0].Seq)}})
	if st := f.action(t, loc); st["failed_again"] != 1.0 || st["succeeded"] != 0.0 {
		t.Fatalf("replay of a malformed search: %v", st)
	}
	if _, body := f.get(t, loc); !strings.Contains(body, "failed_again") || !strings.Contains(body, "MALFORMED_QUERY") {
		t.Errorf("the failed replay's page does not say why:\n%s", body)
	}
	again := f.deadLetters(t, 1, client.DLQFilter{})
	if again[0].Seq == bad[0].Seq || again[0].Replays != 1 {
		t.Errorf("after the failed replay: %+v, want a fresh dead letter that counts the replay", again[0])
	}
	if code, body := f.get(t, fmt.Sprintf("/dlq/%d", bad[0].Seq)); code != http.StatusNotFound || !strings.Contains(body, "replaced by a newer dead letter") {
		t.Errorf("the replaced dead letter: %d\n%s", code, body)
	}

	// Every page rendered above holds no secret.
	for page, body := range f.rendered() {
		for name, secret := range map[string]string{"the operator token": testToken, "the access token": f.access,
			"the consumer secret": sfsim.DefaultClientSecret} {
			if strings.Contains(body, secret) {
				t.Errorf("%s renders %s", page, name)
			}
		}
	}
	if strings.Contains(f.logs.String(), "this is a bug") {
		t.Errorf("the console logged a bug:\n%s", f.logs)
	}
}

// A job's headers that look like credentials are not shown; its trace is.
func TestDeadLetterHeadersAreRedacted(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	msg := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Insert), Header: nats.Header{},
		Data: []byte(`{"id":"with-headers","object":"Contact","fields":{"FirstName":"Header"}}`)}
	msg.Header.Set("Authorization", "Bearer runtime-secret-value")
	msg.Header.Set("X-Api-Token", "another-secret-value")
	msg.Header.Set("X-Tenant", "tenant-a")
	msg.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	msg.Header.Set(sfblocks.HeaderMsgID, "insert::with-headers")
	if _, err := f.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	dls := f.deadLetters(t, 1, client.DLQFilter{})
	f.login(t)
	code, body := f.get(t, fmt.Sprintf("/dlq/%d", dls[0].Seq))
	if code != http.StatusOK || strings.Contains(body, "runtime-secret-value") || strings.Contains(body, "another-secret-value") ||
		strings.Count(body, "redacted: it looks like a credential") != 2 || !strings.Contains(body, "tenant-a") ||
		!regexp.MustCompile(`<code id="traceparent">00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-0[01]</code>`).MatchString(body) {
		t.Errorf("/dlq/%d: %d\n%s", dls[0].Seq, code, body)
	}
}

// A replay's progress is known from its start (how many dead letters it
// replays) and followed to the end; cancelled, it keeps the dead letters,
// and the jobs it published run once, later; replayed again at once, they
// are refused as pending, and nothing is created twice.
func TestReplayProgressAndCancel(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.sim.Faults().LockNextWrites(2)
	for i := range 2 {
		f.publish(t, sfblocks.Insert, &sfblocks.InsertRequest{ID: fmt.Sprintf("cancel-%d", i), Object: "Task",
			Fields: map[string]any{"Subject": fmt.Sprintf("console cancel %d", i)}})
	}
	f.deadLetters(t, 2, client.DLQFilter{SalesforceCode: "UNABLE_TO_LOCK_ROW"})
	tasks := f.count(t, "SELECT Id FROM Task WHERE Subject LIKE 'console cancel%'")
	// Without a worker, no replay can settle: the action stays under way.
	f.stopWorker()
	f.login(t)

	replay := url.Values{"op": {"replay"}, "scope": {"filter"}, "sf_code": {"UNABLE_TO_LOCK_ROW"}, "confirm": {"yes"}}
	code, _, loc := f.post(t, "/dlq/action", replay)
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/actions/") {
		t.Fatalf("replay: %d → %q", code, loc)
	}
	var st map[string]any
	workertest.WaitFor(t, 10*time.Second, "the action to know its total", func() bool {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+loc+"/progress", nil)
		_, body, _ := f.do(t, req)
		st = nil
		return json.Unmarshal([]byte(body), &st) == nil && st["total"] == 2.0
	})
	if st["done"] != false || st["settled"] != 0.0 {
		t.Fatalf("progress without a worker: %v", st)
	}
	if code, body := f.get(t, loc); code != http.StatusOK || !strings.Contains(body, "Running…") || !strings.Contains(body, `id="cancel"`) ||
		!strings.Contains(body, `<progress id="bar" max="2" value="0">`) {
		t.Fatalf("the running action's page: %d\n%s", code, body)
	}
	if code, _, back := f.post(t, loc+"/cancel", url.Values{}); code != http.StatusSeeOther || back != loc {
		t.Fatalf("cancel: %d → %q", code, back)
	}
	st = f.action(t, loc)
	if st["cancelled"] != true || !strings.Contains(fmt.Sprint(st["error"]), "dead letters not replayed are kept") {
		t.Errorf("the cancelled action: %v", st)
	}
	if _, body := f.get(t, loc); !strings.Contains(body, "cancelled") || strings.Contains(body, `id="cancel"`) {
		t.Errorf("the cancelled action's page:\n%s", body)
	}
	f.deadLetters(t, 2, client.DLQFilter{SalesforceCode: "UNABLE_TO_LOCK_ROW"})

	// A worker again: the replays published before the cancel run, once.
	// Replayed again within the stream's duplicate window, the dead
	// letters are refused as still pending, and say so.
	f.startWorker(t, 1)
	workertest.WaitFor(t, 20*time.Second, "the replays published before the cancel to run", func() bool {
		return f.count(t, "SELECT Id FROM Task WHERE Subject LIKE 'console cancel%'") == tasks+2
	})
	_, _, loc = f.post(t, "/dlq/action", replay)
	if st := f.action(t, loc); st["failed_again"] != 2.0 {
		t.Fatalf("the second replay: %v", st)
	}
	if _, body := f.get(t, loc); !strings.Contains(body, "duplicate window and is still pending") {
		t.Errorf("the second replay's page does not say why:\n%s", body)
	}
	if n := f.count(t, "SELECT Id FROM Task WHERE Subject LIKE 'console cancel%'"); n != tasks+2 {
		t.Errorf("%d Tasks after a cancelled replay and another, want %d", n, tasks+2)
	}
}
