package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/console"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// The browser test runs the console in a real headless Chromium. Without
// one it skips, unless CI or SFBLOCKS_REQUIRE_BROWSER is set: then a
// missing browser fails it (.ci/run installs Debian's chromium).
// SFBLOCKS_CHROMIUM names the browser's binary; by default it is looked
// up on PATH. SFBLOCKS_UPDATE_SCREENSHOTS=1 writes the main pages'
// screenshots into screenshots/, for the README.

// chromiumNames are the binaries looked up on PATH, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// findChromium returns the browser's path, or skips (or fails) the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SFBLOCKS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found on PATH (" + strings.Join(chromiumNames, ", ") + "): install it (apt-get install chromium) or set SFBLOCKS_CHROMIUM"
	if os.Getenv("CI") != "" || os.Getenv("SFBLOCKS_REQUIRE_BROWSER") != "" {
		t.Fatal(msg + "; CI and SFBLOCKS_REQUIRE_BROWSER require the browser test to run")
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab on the console.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	secrets map[string]string
	shots   string // the screenshots' directory; "" takes none
}

func newBrowser(t *testing.T, base string, secrets map[string]string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(findChromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("hide-scrollbars", true),
		// Chromium refuses its sandbox as root, and containers often lack
		// the user namespaces it needs; the pages are the test's own.
		chromedp.NoSandbox,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base, secrets: secrets}
	if os.Getenv("SFBLOCKS_UPDATE_SCREENSHOTS") != "" {
		b.shots = "screenshots"
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The first run starts the browser: no timeout on it.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return b
}

// do runs steps, within a minute.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v\n%s", what, err, b.html())
	}
}

// open goes to a path of the console.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// eval evaluates a JavaScript expression in the page.
func (b *browser) eval(expr string, v any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// wait polls a JavaScript condition until it holds, across the page's own
// reloads and refreshes.
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	ok := workertest.Eventually(90*time.Second, func() bool {
		var v bool
		return b.eval("Boolean("+expr+")", &v) == nil && v
	})
	if !ok {
		b.t.Fatalf("browser: %s: not reached within 90s (%s)\n%s", what, expr, b.html())
	}
}

// text returns the text of the first element matching a CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	if err := b.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel), &s); err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// count returns how many elements match a CSS selector.
func (b *browser) count(sel string) int {
	b.t.Helper()
	var n int
	if err := b.eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

// html returns the page's HTML, for failure messages.
func (b *browser) html() string {
	var s string
	_ = b.eval(`document.documentElement.outerHTML`, &s)
	return s
}

// checkSecrets fails the test if the page shows a secret.
func (b *browser) checkSecrets(page string) {
	b.t.Helper()
	h := b.html()
	for name, secret := range b.secrets {
		if secret != "" && strings.Contains(h, secret) {
			b.t.Errorf("%s shows %s", page, name)
		}
	}
}

// shot writes a PNG of the whole page when screenshots are asked for.
func (b *browser) shot(name string) {
	b.t.Helper()
	b.checkSecrets(name)
	if b.shots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// An operator in a real browser: logs in, sees dead letters appear, opens
// one, filters the list, replays everything the filter matches, follows
// the progress to its summary, and finds the records created in the
// simulator and the filtered list empty; then looks at a replayed job,
// the accounts and the workers. No page shows a secret.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	// A short history, so that the charts of a test's minute fill them.
	f := newFleet(t, fleetOptions{console: func(c *console.Config) { c.History = 30 * time.Second; c.SampleInterval = time.Second }})
	b := newBrowser(t, f.srv.URL, map[string]string{"the operator token": testToken, "the access token": f.access,
		"the consumer secret": sfsim.DefaultClientSecret})

	// Some jobs succeed, for the charts and the budget.
	runJobs(t, f, 3, "browser-ok-1")

	// Logging in sends back to the page asked for.
	b.open("/dlq")
	b.wait("the login page", `document.querySelector('#token')`)
	b.do("log in", chromedp.SendKeys(chromedp.ID("token"), testToken), chromedp.Click(chromedp.ID("login")))
	b.wait("the dead-letter list, empty", `location.pathname === '/dlq' && document.querySelector('#empty')`)

	// Dead letters appear in the open list: three Tasks refused while the
	// org's rows were locked (they succeed when replayed), a Contact
	// missing its LastName and a malformed search (they would not).
	f.sim.Faults().LockNextWrites(3)
	for i := range 3 {
		f.publish(t, sfblocks.Insert, &sfblocks.InsertRequest{ID: fmt.Sprintf("browser-locked-%d", i), Object: "Task",
			Fields: map[string]any{"Subject": fmt.Sprintf("console browser %d", i)}})
	}
	f.deadLetters(t, 3, client.DLQFilter{SalesforceCode: "UNABLE_TO_LOCK_ROW"})
	f.publish(t, sfblocks.Insert, &sfblocks.InsertRequest{ID: "browser-contact", Object: "Contact", Fields: map[string]any{"FirstName": "Browser"}})
	f.publish(t, sfblocks.Search, &sfblocks.SearchRequest{ID: "browser-bad-query", Query: "SELECT Id FROM Contact WHERE"})
	dls := f.deadLetters(t, 5, client.DLQFilter{})
	b.wait("the five dead letters to appear in the list", `document.querySelectorAll('input[name="seqs"]').length === 5`)
	if got := b.text("#retention"); !strings.Contains(got, "kept 30d") {
		t.Errorf("retention: %q", got)
	}
	b.shot("deadletters")

	// One envelope: payload, error, Salesforce's answer.
	var contact *sfblocks.DeadLetter
	for _, dl := range dls {
		if dl.JobID == "browser-contact" {
			contact = dl
		}
	}
	b.open(fmt.Sprintf("/dlq/%d", contact.Seq))
	b.wait("the dead letter's envelope", `document.querySelector('#result-body')`)
	if got := b.text("#error-message"); !strings.Contains(got, "LastName") {
		t.Errorf("the dead letter's error: %q", got)
	}
	if got := b.text("#result-body"); !strings.Contains(got, "REQUIRED_FIELD_MISSING") {
		t.Errorf("the dead letter's result_body: %q", got)
	}
	b.shot("deadletter")

	// Filter by Salesforce code, then replay everything it matches.
	b.open("/dlq")
	b.wait("the list", `document.querySelectorAll('input[name="seqs"]').length === 5`)
	b.do("filter by Salesforce code", chromedp.SendKeys(chromedp.ID("f-sf-code"), "UNABLE_TO_LOCK_ROW"), chromedp.Click(chromedp.ID("apply-filter")))
	b.wait("the filtered list", `location.search.includes('sf_code=UNABLE_TO_LOCK_ROW') && document.querySelectorAll('input[name="seqs"]').length === 3`)
	if got := b.text("#matched-count"); got != "3" {
		t.Errorf("matched: %q, want 3", got)
	}
	tasks := f.count(t, "SELECT Id FROM Task WHERE Subject LIKE 'console browser%'")
	b.do("replay all that match", chromedp.Click(chromedp.ID("replay-all")))
	b.wait("the confirmation", `document.querySelector('#confirm')`)
	if got := b.text("h1"); got != "Replay 3 dead letters?" {
		t.Errorf("the confirmation asks %q", got)
	}
	b.do("confirm", chromedp.Click(chromedp.ID("confirm")))
	b.wait("the replay's summary", `document.querySelector('#status.good')`)
	if ok, again, skipped := b.text("#succeeded"), b.text("#failed-again"), b.text("#skipped"); ok != "3" || again != "0" || skipped != "0" {
		t.Errorf("summary: %s succeeded, %s failed again, %s skipped; want 3, 0, 0", ok, again, skipped)
	}
	if n := b.count("#results tbody tr"); n != 3 {
		t.Errorf("the summary lists %d dead letters, want 3", n)
	}
	b.shot("action")
	if n := f.count(t, "SELECT Id FROM Task WHERE Subject LIKE 'console browser%'"); n != tasks+3 {
		t.Errorf("%d Tasks in the simulator after the replay, want %d", n, tasks+3)
	}
	b.do("back to the list", chromedp.Click(chromedp.ID("back")))
	b.wait("the filtered list, empty", `location.search.includes('sf_code=UNABLE_TO_LOCK_ROW') && document.querySelector('#empty')`)
	if got := b.text("#empty"); got != "No dead letter matches this filter." {
		t.Errorf("the emptied filter says %q", got)
	}
	b.open("/dlq")
	b.wait("the two other dead letters", `document.querySelectorAll('input[name="seqs"]').length === 2`)

	// A replayed job, the accounts, the workers.
	b.open("/jobs?block=insert&id=browser-locked-0")
	b.wait("the job", `document.querySelector('#job-insert pre.result')`)
	if got := b.text("#job-insert"); !strings.Contains(got, "Kept result") || !strings.Contains(got, `"created": true`) {
		t.Errorf("the job page: %q", got)
	}
	b.shot("job")
	b.open("/")
	b.wait("the account's budget gauge", `document.querySelector('#account-sim svg.gauge')`)
	b.shot("accounts")
	b.open("/workers")
	runJobs(t, f, 3, "browser-ok-2")
	b.wait("the workers' charts", `document.querySelectorAll('polyline.series').length >= 5`)
	b.shot("workers")
}
