package sfsim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Both limits answer 403 REQUEST_LIMIT_EXCEEDED; only the message tells
// the daily allocation from the concurrent long-running requests.
func TestRequestLimitsAndTheirMessages(t *testing.T) {
	s, tok := seeded(t, Options{DailyAPILimit: 1000, ConcurrentRequestLimit: 1, LongRequestThreshold: 100 * time.Millisecond})
	// One request that runs long: a create whose answer is withheld.
	if err := s.Faults().Set(FaultConfig{CommitThenDrop: &CommitThenDrop{Rate: 1, Mode: CommitWithhold, Delay: Duration(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = send(http.DefaultClient, http.MethodPost, dataURL(s, "sobjects/Task/"), tok, `{"Subject":"long"}`)
	}()
	// Young, it does not count: short requests pass.
	if r := call(t, http.MethodGet, dataURL(s, "limits"), tok, nil); r.status != http.StatusOK {
		t.Fatalf("next to a young request: %d %s", r.status, r.body)
	}
	time.Sleep(300 * time.Millisecond)
	r := call(t, http.MethodGet, dataURL(s, "limits"), tok, nil)
	if r.status != http.StatusForbidden || r.errorCode(t) != "REQUEST_LIMIT_EXCEEDED" ||
		!strings.Contains(string(r.body), "ConcurrentRequests (Concurrent API Requests) Limit exceeded.") {
		t.Fatalf("past the concurrent limit: %d %s", r.status, r.body)
	}
	<-done
	// The client sees the connection close a moment before the handler
	// has returned and left the running list.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := call(t, http.MethodGet, dataURL(s, "limits"), tok, nil)
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the long request: %d %s", r.status, r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.SetAPIUsage(1000)
	r = call(t, http.MethodGet, dataURL(s, "limits"), tok, nil)
	if r.status != http.StatusForbidden || r.errorCode(t) != "REQUEST_LIMIT_EXCEEDED" || !strings.Contains(string(r.body), "TotalRequests Limit exceeded.") {
		t.Fatalf("past the daily limit: %d %s", r.status, r.body)
	}
	if st := s.Stats(); st.ConcurrentLimitExceeded < 1 || st.LimitExceeded != 1 {
		t.Errorf("stats: concurrent %d daily %d", st.ConcurrentLimitExceeded, st.LimitExceeded)
	}
}

func TestCollectionsTenChunkRule(t *testing.T) {
	s, tok := seeded(t, Options{})
	var recs []string
	for i := range 11 {
		typ := "Task"
		if i%2 == 1 {
			typ = "Case"
		}
		recs = append(recs, `{"attributes":{"type":"`+typ+`"},"Subject":"chunk"}`)
	}
	body := `{"records":[` + strings.Join(recs, ",") + `]}`
	r := call(t, http.MethodPost, dataURL(s, "composite/sobjects"), tok, body)
	if r.status != http.StatusBadRequest || r.errorCode(t) != "INVALID_BATCH_REQUEST" {
		t.Fatalf("11 chunks: %d %s", r.status, r.body)
	}
	// The same records grouped by type are 2 chunks.
	var grouped []string
	for i := 0; i < 11; i += 2 {
		grouped = append(grouped, recs[i])
	}
	for i := 1; i < 11; i += 2 {
		grouped = append(grouped, recs[i])
	}
	r = call(t, http.MethodPost, dataURL(s, "composite/sobjects"), tok, `{"records":[`+strings.Join(grouped, ",")+`]}`)
	if r.status != http.StatusOK {
		t.Fatalf("2 chunks: %d %s", r.status, r.body)
	}
	if st := s.Stats(); st.RecordsCreated != 11 {
		t.Errorf("created %d, want 11 (none from the refused request)", st.RecordsCreated)
	}
}
