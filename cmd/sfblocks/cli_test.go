package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// A new user's first steps: help exits 0 and lists the commands, and
// "help X" and "X --help" are one text.
func TestHelpWithoutSurprises(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, _ := runCmd(t, ctx, args...)
		if code != 0 || !strings.Contains(out, "Commands:") || !strings.Contains(out, "  dlq ") || !strings.Contains(out, "  result ") {
			t.Errorf("sfblocks %v: exit %d, stdout:\n%s", args, code, out)
		}
	}
	if code, _, errOut := runCmd(t, ctx); code != 2 || !strings.Contains(errOut, "Commands:") {
		t.Errorf("sfblocks with no command: exit %d", code)
	}
	same := [][]string{
		{"serve"}, {"call", "search"}, {"status"}, {"result"}, {"bench"}, {"sim"},
		{"dlq", "ls"}, {"dlq", "show"}, {"dlq", "replay"}, {"dlq", "purge"},
		{"accounts", "check"}, {"accounts", "reset"}, {"fleet", "check"}, {"fleet", "apply"},
	}
	helps := map[string]string{}
	for _, cmd := range same {
		hc, hout, herr := runCmd(t, ctx, append([]string{"help"}, cmd...)...)
		fc, fout, ferr := runCmd(t, ctx, append(cmd, "--help")...)
		if hc != 0 || fc != 0 || herr != ferr || hout != fout {
			t.Errorf("'sfblocks help %s' (exit %d) and 'sfblocks %s --help' (exit %d) differ:\n%s\n---\n%s",
				strings.Join(cmd, " "), hc, strings.Join(cmd, " "), fc, herr, ferr)
		}
		if !strings.Contains(ferr, "-nats-url") && cmd[0] != "sim" && cmd[0] != "bench" {
			t.Errorf("'sfblocks %s --help' lists no flags:\n%s", strings.Join(cmd, " "), ferr)
		}
		helps[strings.Join(cmd, " ")] = ferr
	}
	// Each dlq subcommand has its own help, with its own flags only.
	for sub, want := range map[string][]string{
		"ls": {"-limit", "-code"}, "show": {"ID"}, "replay": {"-dry-run", "-rate"}, "purge": {"-yes"},
	} {
		h := helps["dlq "+sub]
		for _, w := range want {
			if !strings.Contains(h, w) {
				t.Errorf("dlq %s --help lacks %s:\n%s", sub, w, h)
			}
		}
	}
	if strings.Contains(helps["dlq ls"], "-dry-run") || strings.Contains(helps["dlq show"], "-yes") {
		t.Error("a dlq subcommand's help lists another subcommand's flags")
	}
}

// The README's development-mode walk-through, through the real commands:
// the sample jobs, call --file refusing what the worker refuses, result,
// accounts check, dlq ls --code by Salesforce code, a dry run that does
// not say "done", micro stats' job time, and every metric documented.
func TestDevelopmentModeWalkThrough(t *testing.T) {
	ns := workertest.StartNATS(t)
	url := ns.ClientURL()
	metrics, logs := startServe(t, "--nats-url", url, "--sim-addr", "127.0.0.1:0")
	ctx := context.Background()

	t.Run("sample jobs", func(t *testing.T) {
		for _, block := range sfblocks.Blocks() {
			files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "jobs", string(block), "*.json"))
			if len(files) == 0 {
				t.Fatal("no sample jobs")
			}
			for _, f := range files {
				code, out, errOut := runCmd(t, ctx, "call", string(block), "--nats-url", url, "--file", f)
				var r sfblocks.Reply
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Errorf("%s: stdout is not a reply: %v\n%s%s", f, err, out, errOut)
					continue
				}
				if strings.HasPrefix(filepath.Base(f), "bad-") {
					if code != 1 || r.Error == nil || r.Error.Code != sfblocks.CodeInvalidRequest || !strings.Contains(errOut, "not sent") {
						t.Errorf("%s: exit %d, %+v %+v\n%s", f, code, r, r.Error, errOut)
					}
					continue
				}
				if code != 0 || r.Status != sfblocks.StatusOK {
					t.Errorf("%s: exit %d, status %s %+v", f, code, r.Status, r.Error)
				}
			}
		}
	})

	t.Run("call --file refuses trailing data", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "two.json")
		if err := os.WriteFile(f, []byte(`{"query":"SELECT Id FROM Contact"} {"query":"SELECT Id FROM Lead"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, _ := runCmd(t, ctx, "call", "search", "--nats-url", url, "--file", f)
		if code != 1 || !strings.Contains(out, "INVALID_REQUEST") || !strings.Contains(out, "after") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})

	t.Run("result", func(t *testing.T) {
		code, out, errOut := runCmd(t, ctx, "call", "insert", "--nats-url", url, "--id", "call-42", "--object", "Case", "--field", "Subject=Callback requested")
		if code != 0 {
			t.Fatalf("insert: exit %d %s %s", code, out, errOut)
		}
		var sent sfblocks.Reply
		_ = json.Unmarshal([]byte(out), &sent)
		code, out, errOut = runCmd(t, ctx, "result", "--nats-url", url, "call-42")
		var got struct {
			Block  sfblocks.Block  `json:"block"`
			Result *sfblocks.Reply `json:"result"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Block != sfblocks.Insert || got.Result == nil || got.Result.ObjectID != sent.ObjectID {
			t.Errorf("result call-42: exit %d\n%s%s", code, out, errOut)
		}
		if code, _, errOut := runCmd(t, ctx, "result", "--nats-url", url, "no-such-job"); code != 1 || !strings.Contains(errOut, "no kept result") {
			t.Errorf("result of an unknown job: exit %d %s", code, errOut)
		}
	})

	t.Run("accounts check", func(t *testing.T) {
		instance := loggedField(logs, "no --config given: started the Salesforce simulator with its seed data and a development account 'dev' (client credentials); jobs go to the simulator, not to a real org", "instance_url")
		port := instance[strings.LastIndex(instance, ":")+1:]
		code, out, errOut := runCmd(t, ctx, "accounts", "check", "--sim-addr", "127.0.0.1:"+port)
		if code != 0 || !regexp.MustCompile(`dev\s.*ok`).MatchString(out) {
			t.Errorf("accounts check in development mode: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("dlq by Salesforce code", func(t *testing.T) {
		code, out, _ := runCmd(t, ctx, "call", "insert", "--nats-url", url, "--durable", "--id", "no-last-name", "--object", "Contact", "--field", "FirstName=Ada")
		if code != 1 || !strings.Contains(out, "REQUIRED_FIELD_MISSING") {
			t.Fatalf("failing durable insert: exit %d\n%s", code, out)
		}
		var listed string
		workertest.Eventually(10*time.Second, func() bool {
			_, listed, _ = runCmd(t, ctx, "dlq", "ls", "--nats-url", url, "--code", "REQUIRED_FIELD_MISSING")
			return strings.Contains(listed, "1 shown")
		})
		if !strings.Contains(listed, "no-last-name") || !strings.Contains(listed, "1 shown") {
			t.Errorf("dlq ls --code REQUIRED_FIELD_MISSING:\n%s", listed)
		}
		code, out, errOut := runCmd(t, ctx, "dlq", "replay", "--nats-url", url, "--code", "REQUIRED_FIELD_MISSING", "--dry-run")
		if code != 0 || strings.Contains(out+errOut, "done") || !strings.Contains(out, "would replay 1") {
			t.Errorf("dlq replay --dry-run: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("micro stats show job time", func(t *testing.T) {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		msg, err := nc.Request("$SRV.STATS.sfblocks", nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var stats struct {
			Endpoints []struct {
				Name                  string              `json:"name"`
				AverageProcessingTime time.Duration       `json:"average_processing_time"`
				Data                  worker.EndpointData `json:"data"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal(msg.Data, &stats); err != nil {
			t.Fatal(err)
		}
		for _, e := range stats.Endpoints {
			if e.Data.OK == 0 {
				continue
			}
			// A job costs Salesforce round trips; handing it on does not.
			if e.Data.AverageJobTime <= 0 || e.Data.JobTime < e.Data.AverageJobTime || e.Data.AverageJobTime < e.AverageProcessingTime {
				t.Errorf("%s: job time %v (average %v), dispatch %v", e.Name, e.Data.JobTime, e.Data.AverageJobTime, e.AverageProcessingTime)
			}
		}
	})

	t.Run("every metric is documented", func(t *testing.T) {
		res, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		families := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^# TYPE (sfblocks_\S+) (\S+)`).FindAllStringSubmatch(string(body), -1) {
			name := m[1]
			families[name] = true
			if !strings.Contains(string(readme), "`"+name+"`") {
				t.Errorf("metric %s (%s) is not in the README's metrics table", name, m[2])
			}
		}
		names := make([]string, 0, len(families))
		for n := range families {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) < 15 {
			t.Errorf("only %d sfblocks families exported: %v", len(names), names)
		}
	})
}
