package sfsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freshClient is a client with its own connection pool, so one test's
// dropped connections never meet another's requests.
func freshClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// isDropped reports whether err is a connection closed without an answer
// (as opposed to a timeout).
func isDropped(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeCase is one kind of write the fault applies to, with the number of
// records it creates and a query that finds them.
type writeCase struct {
	name, method, path, body string
	created                  int
	find                     string
}

func writeCases(job string) []writeCase {
	task := `{"Subject":"Call from x","Status":"Completed","SFBlocks_Job_Id__c":"` + job + `-create"}`
	return []writeCase{
		{"create", http.MethodPost, "sobjects/Task", task, 1, job + "-create"},
		{"upsert", http.MethodPatch, "sobjects/Task/SFBlocks_Job_Id__c/" + job + "-upsert", `{"Subject":"Call from x"}`, 1, job + "-upsert"},
		{"collection create", http.MethodPost, "composite/sobjects",
			`{"records":[{"attributes":{"type":"Task"},"Subject":"a","SFBlocks_Job_Id__c":"` + job + `-coll"},{"attributes":{"type":"Task"},"Subject":"b"}]}`, 2, job + "-coll"},
		{"collection upsert", http.MethodPatch, "composite/sobjects/Task/SFBlocks_Job_Id__c",
			`{"records":[{"attributes":{"type":"Task"},"Subject":"a","SFBlocks_Job_Id__c":"` + job + `-cu"}]}`, 1, job + "-cu"},
	}
}

func jobRecords(t *testing.T, s *Server, tok, job string) int {
	t.Helper()
	q := "SELECT Id FROM Task WHERE SFBlocks_Job_Id__c = '" + job + "'"
	var res queryResponse
	call(t, http.MethodGet, dataURL(s, "query?q="+url.QueryEscape(q)), tok, nil).json(t, &res)
	return res.TotalSize
}

// TestCommitThenDrop: at rate 1 every write commits, then the client gets a
// transport error instead of the answer, in both modes and for every kind
// of write; the stats say what happened.
func TestCommitThenDrop(t *testing.T) {
	modes := []struct {
		name     string
		mode     string
		delay    time.Duration
		timeout  time.Duration // client timeout; 0 for none
		wantKind string
		wantErr  func(error) bool
		minWait  time.Duration
	}{
		{"drop", CommitDrop, 0, 10 * time.Second, "commitThenDrop", isDropped, 0},
		// The client gives up first: a timeout, not an answer.
		{"withhold past the client timeout", CommitWithhold, 30 * time.Second, 300 * time.Millisecond, "commitThenWithhold", isTimeout, 300 * time.Millisecond},
		// The simulator gives up first: the connection closes unanswered.
		{"withhold then close", CommitWithhold, 150 * time.Millisecond, 10 * time.Second, "commitThenWithhold", isDropped, 150 * time.Millisecond},
	}
	for _, m := range modes {
		for _, w := range writeCases("ctd") {
			t.Run(m.name+"/"+w.name, func(t *testing.T) {
				s, tok := seeded(t, Options{})
				if err := s.Faults().SetCommitThenDrop(1, m.mode, m.delay); err != nil {
					t.Fatal(err)
				}
				began := time.Now()
				resp, err := send(freshClient(t, m.timeout), w.method, dataURL(s, w.path), tok, w.body)
				if err == nil {
					t.Fatalf("got an answer: %d %s", resp.status, resp.body)
				}
				if !m.wantErr(err) {
					t.Fatalf("transport error %v is not the expected kind", err)
				}
				if waited := time.Since(began); waited < m.minWait {
					t.Errorf("answer lost after %v, want at least %v", waited, m.minWait)
				}
				s.Faults().Reset()
				if n := jobRecords(t, s, tok, w.find); n != 1 {
					t.Fatalf("%d records with job id %s, want the committed one", n, w.find)
				}
				st := s.Stats()
				if st.FaultsInjected[m.wantKind] != 1 || st.RecordsCreated != int64(w.created) || st.RecordsCreatedUnanswered != int64(w.created) {
					t.Fatalf("stats: faults %v, created %d, unanswered %d", st.FaultsInjected, st.RecordsCreated, st.RecordsCreatedUnanswered)
				}
			})
		}
	}
}

// TestCommitThenDropSparesFailedWrites: a write that committed nothing is
// answered, whatever the rate.
func TestCommitThenDropSparesFailedWrites(t *testing.T) {
	s, tok := seeded(t, Options{})
	if err := s.Faults().SetCommitThenDrop(1, CommitDrop, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
		wantStatus               int
	}{
		{"invalid create", http.MethodPost, "sobjects/Account", `{}`, http.StatusBadRequest},
		{"allOrNone rolled back", http.MethodPost, "composite/sobjects",
			`{"allOrNone":true,"records":[{"attributes":{"type":"Account"},"Name":"x"},{"attributes":{"type":"Account"}}]}`, http.StatusOK},
		{"query", http.MethodGet, "query?q=" + url.QueryEscape("SELECT Id FROM Account LIMIT 1"), "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := send(freshClient(t, 10*time.Second), tt.method, dataURL(s, tt.path), tok, tt.body)
			if err != nil || resp.status != tt.wantStatus {
				t.Fatalf("%v %d %s", err, resp.status, resp.body)
			}
		})
	}
	if n := s.Stats().FaultsInjected["commitThenDrop"]; n != 0 {
		t.Fatalf("fault fired %d times on writes that committed nothing", n)
	}
}

// TestCommitThenDropRateIsSeeded: at rate 0.5 about half the creates lose
// their answer, every record exists, and the same seed loses the same ones.
func TestCommitThenDropRateIsSeeded(t *testing.T) {
	const n = 60
	run := func() (lost []int) {
		s, tok := seeded(t, Options{})
		cfg := FaultConfig{Seed: 7, CommitThenDrop: &CommitThenDrop{Rate: 0.5}}
		if err := s.Faults().Set(cfg); err != nil {
			t.Fatal(err)
		}
		client := freshClient(t, 10*time.Second)
		for i := range n {
			body := fmt.Sprintf(`{"Subject":"seeded","SFBlocks_Job_Id__c":"half-%d"}`, i)
			if _, err := send(client, http.MethodPost, dataURL(s, "sobjects/Task"), tok, body); err != nil {
				if !isDropped(err) {
					t.Fatalf("create %d: %v", i, err)
				}
				lost = append(lost, i)
			}
		}
		s.Faults().Reset()
		var res queryResponse
		call(t, http.MethodGet, dataURL(s, "query?q="+url.QueryEscape("SELECT Id FROM Task WHERE Subject = 'seeded'")), tok, nil).json(t, &res)
		if res.TotalSize != n {
			t.Fatalf("%d records, want all %d committed", res.TotalSize, n)
		}
		if st := s.Stats(); st.FaultsInjected["commitThenDrop"] != int64(len(lost)) || st.RecordsCreatedUnanswered != int64(len(lost)) {
			t.Fatalf("stats %v / %d unanswered, client saw %d lost", st.FaultsInjected, st.RecordsCreatedUnanswered, len(lost))
		}
		return lost
	}
	first, second := run(), run()
	if len(first) < n/4 || len(first) > n*3/4 {
		t.Errorf("%d of %d answers lost, want about half", len(first), n)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("same seed, different draws:\n%v\n%v", first, second)
	}
}

// TestCloseReleasesWithheldAnswers: Close does not wait out a withhold.
func TestCloseReleasesWithheldAnswers(t *testing.T) {
	s, tok := seeded(t, Options{})
	if err := s.Faults().SetCommitThenDrop(1, CommitWithhold, time.Hour); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	client := freshClient(t, 0)
	go func() {
		_, err := send(client, http.MethodPost, dataURL(s, "sobjects/Account"), tok, `{"Name":"held"}`)
		done <- err
	}()
	// Wait until the write committed, then close.
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().FaultsInjected["commitThenWithhold"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the write never reached the fault")
		}
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a withheld write was answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left the withheld connection open")
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestCommitThenDropConfig(t *testing.T) {
	s := startSim(t, Options{})
	admin := func(method, body string) response {
		t.Helper()
		var b any
		if body != "" {
			b = body
		}
		return call(t, method, s.LoginURL()+"/_sim/faults", "", b)
	}
	// Round trip over /_sim/faults.
	r := admin(http.MethodPut, `{"seed":9,"commitThenDrop":{"rate":0.25,"mode":"withhold","delay":"45s"}}`)
	if r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	want := CommitThenDrop{Rate: 0.25, Mode: CommitWithhold, Delay: Duration(45 * time.Second)}
	var cfg FaultConfig
	admin(http.MethodGet, "").json(t, &cfg)
	if cfg.CommitThenDrop == nil || *cfg.CommitThenDrop != want {
		t.Fatalf("GET: %+v", cfg.CommitThenDrop)
	}
	if got := s.Faults().Config().CommitThenDrop; got == nil || *got != want {
		t.Fatalf("Config: %+v", got)
	}
	var raw map[string]any
	admin(http.MethodGet, "").json(t, &raw)
	if got, _ := json.Marshal(raw["commitThenDrop"]); string(got) != `{"delay":"45s","mode":"withhold","rate":0.25}` {
		t.Fatalf("wire form %s", got)
	}
	// The Go API and clearing.
	if err := s.Faults().SetCommitThenDrop(0.5, "", 0); err != nil {
		t.Fatal(err)
	}
	if got := s.Faults().Config().CommitThenDrop; got == nil || *got != (CommitThenDrop{Rate: 0.5}) {
		t.Fatalf("after SetCommitThenDrop: %+v", got)
	}
	if err := s.Faults().SetCommitThenDrop(0, "", 0); err != nil || s.Faults().Config().CommitThenDrop != nil {
		t.Fatalf("rate 0 must remove the fault: %v %+v", err, s.Faults().Config().CommitThenDrop)
	}
	if !strings.Contains(string(admin(http.MethodGet, "").body), `"latency"`) || strings.Contains(string(admin(http.MethodGet, "").body), "commitThenDrop") {
		t.Fatal("a removed fault still shows")
	}

	invalid := []struct {
		name, body, wantIn string
	}{
		{"rate above 1", `{"commitThenDrop":{"rate":1.5}}`, "commitThenDrop.rate 1.5 is outside [0,1]"},
		{"negative rate", `{"commitThenDrop":{"rate":-0.1}}`, "commitThenDrop.rate -0.1 is outside [0,1]"},
		{"mode", `{"commitThenDrop":{"rate":0.1,"mode":"vanish"}}`, `commitThenDrop.mode "vanish" unknown (use "drop" or "withhold")`},
		{"negative delay", `{"commitThenDrop":{"rate":0.1,"mode":"withhold","delay":"-1s"}}`, "commitThenDrop.delay -1s is negative"},
		{"delay for drop", `{"commitThenDrop":{"rate":0.1,"delay":"1s"}}`, `commitThenDrop.delay 1s applies to mode "withhold" only`},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			r := admin(http.MethodPut, tt.body)
			var e map[string]string
			r.json(t, &e)
			if r.status != http.StatusBadRequest || !strings.Contains(e["error"], tt.wantIn) {
				t.Fatalf("%d %s, want an error containing %q", r.status, r.body, tt.wantIn)
			}
			var c FaultConfig
			if err := json.Unmarshal([]byte(tt.body), &c); err != nil {
				t.Fatal(err)
			}
			if err := s.Faults().Set(c); err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("Set: %v", err)
			}
		})
	}
	if err := s.Faults().SetCommitThenDrop(2, CommitDrop, 0); err == nil {
		t.Fatal("SetCommitThenDrop accepted rate 2")
	}
}
