package console_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// runJobs runs n synchronous searches and one durable Insert, whose kept
// reply it returns.
func runJobs(t *testing.T, f *fleet, n int, insertID string) *sfblocks.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		if _, err := f.client.Search(ctx, &sfblocks.SearchRequest{ID: fmt.Sprintf("page-search-%d", i), Query: "SELECT Id, Name FROM Account LIMIT 2"}); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := f.client.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: insertID, Object: "Contact",
		Fields: map[string]any{"FirstName": "Page", "LastName": "Test"}})
	if err != nil || reply.Status != sfblocks.StatusOK || reply.ObjectID == "" {
		t.Fatalf("the durable Insert: %+v, %v", reply, err)
	}
	return reply
}

// The Accounts, Workers and Job pages show what the fleet reports: the
// breaker and token of the account, its API usage as a gauge with its
// reserve, the worker with its counters and charts, a job's kept result;
// and none of them shows a secret.
func TestAccountsWorkersAndJobPages(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.login(t)
	reply := runJobs(t, f, 5, "page-insert-1")

	var body string
	workertest.WaitFor(t, 20*time.Second, "the Accounts page to show the account's API usage", func() bool {
		_, body = f.get(t, "/")
		return strings.Contains(body, `class="gauge"`) && strings.Contains(body, "API requests used")
	})
	for _, want := range []string{`id="account-sim"`, `badge good">closed`, `badge good">valid`, "reserve for synchronous jobs from",
		"requests today", "console-test-worker"} {
		if !strings.Contains(body, want) {
			t.Errorf("the Accounts page lacks %q:\n%s", want, body)
		}
	}

	workertest.WaitFor(t, 20*time.Second, "the Workers page to chart the jobs", func() bool {
		runJobs(t, f, 1, "page-insert-1") // answered from its kept result
		_, body = f.get(t, "/workers")
		return strings.Contains(body, `<polyline class="series s0"`) && strings.Contains(body, `<polyline class="series s1"`)
	})
	for _, want := range []string{"1</span> workers answering", "<td>insert</td>", "<td>search</td>", "Jobs finished per second", "Mean job time"} {
		if !strings.Contains(body, want) {
			t.Errorf("the Workers page lacks %q:\n%s", want, body)
		}
	}

	jobs := []struct {
		name     string
		query    string
		wantCode int
		want     []string
	}{
		{"kept result", "block=insert&id=page-insert-1", http.StatusOK, []string{"Kept result", reply.ObjectID, `badge good">ok`, "Last run", "it ended with the kept result"}},
		{"both blocks", "id=page-insert-1", http.StatusOK, []string{`id="job-search"`, `id="job-insert"`, "The fleet holds nothing of this search job"}},
		{"unknown job", "block=insert&id=never-seen", http.StatusOK, []string{"The fleet holds nothing of this insert job"}},
		{"bad block", "block=update&id=x", http.StatusBadRequest, []string{"choose search or insert"}},
		{"account without id", "account=sim", http.StatusBadRequest, []string{"give the job&#39;s id"}},
		{"empty form", "", http.StatusOK, []string{`id="job-form"`}},
	}
	for _, tt := range jobs {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.get(t, "/jobs?"+tt.query)
			if code != tt.wantCode {
				t.Errorf("/jobs?%s: %d, want %d", tt.query, code, tt.wantCode)
			}
			for _, want := range tt.want {
				if !strings.Contains(body, want) {
					t.Errorf("/jobs?%s lacks %q:\n%s", tt.query, want, body)
				}
			}
		})
	}

	if code, body := f.get(t, "/nowhere"); code != http.StatusNotFound || !strings.Contains(body, "There is no such page") {
		t.Errorf("/nowhere: %d\n%s", code, body)
	}
	for page, body := range f.rendered() {
		for name, secret := range map[string]string{"the operator token": testToken, "the access token": f.access,
			"the consumer secret": sfsim.DefaultClientSecret} {
			if strings.Contains(body, secret) {
				t.Errorf("%s renders %s", page, name)
			}
		}
	}
}

// An account in trouble, as a worker reports it: an open breaker says when
// it probes again, a refused credential says how to fix it, a budget in
// its reserve says durable jobs wait.
func TestAccountsPageSaysWhatToDo(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{noWorker: true})
	until := time.Now().Add(30 * time.Second).UTC()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	collect := func() []worker.AccountStatus {
		return []worker.AccountStatus{
			{Account: "prod", Breaker: "open", BreakerOpenUntil: &until, Token: worker.TokenStatus{State: "failed", ErrorCode: auth.CodeAuthFailed},
				APIUsed: 14000, APIMax: 15000, APIReserveFrom: 13500, Budget: "reserve"},
			{Account: "eu", Breaker: "closed", Token: worker.TokenStatus{State: "retrying", ErrorCode: auth.CodeAuthRetrying, RetryAt: until}},
		}
	}
	if err := worker.ReportStatus(ctx, f.js, "host-a-1", collect, worker.StatusConfig{Interval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	f.login(t)
	var body string
	workertest.WaitFor(t, 20*time.Second, "the Accounts page to show both accounts", func() bool {
		_, body = f.get(t, "/")
		return strings.Contains(body, `id="account-prod"`) && strings.Contains(body, `id="account-eu"`)
	})
	for _, want := range []string{
		`badge bad">open`, "probes again at " + until.Format("2006-01-02 15:04:05Z"),
		"AUTH_FAILED", "sfblocks authorize --account prod",
		"API usage is in the reserve kept for synchronous jobs (from 13,500 of 15,000)", `class="gauge-used warn"`,
		"AUTH_RETRYING", "sfblocks accounts reset eu",
		"no dead-letter stream yet",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the Accounts page lacks %q:\n%s", want, body)
		}
	}
}
