package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// fakeOrg is a minimal stand-in for a Salesforce instance, for testing the
// client's own logic (retry, paging, parsing) in isolation. The faithful
// simulator is tested against the client in sim_test.go.
type fakeOrg struct {
	t       *testing.T
	mu      sync.Mutex
	valid   map[string]bool
	handler func(w http.ResponseWriter, r *http.Request)
	calls   atomic.Int64
}

func newFakeOrg(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) (*fakeOrg, *httptest.Server) {
	t.Helper()
	f := &fakeOrg{t: t, valid: map[string]bool{"tok-1": true}, handler: h}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok := f.valid[tok]
		f.mu.Unlock()
		w.Header().Set("Sforce-Limit-Info", "api-usage="+strconv.FormatInt(f.calls.Load(), 10)+"/15000")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// rotatingSource hands out tok-1, then tok-2 after an invalidation, and
// records what was invalidated.
type rotatingSource struct {
	mu          sync.Mutex
	current     string
	invalidated []string
	instance    string
}

func (s *rotatingSource) Token(context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (&oauth2.Token{AccessToken: s.current}).WithExtra(map[string]any{"instance_url": s.instance}), nil
}

func (s *rotatingSource) Invalidate(failed *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, failed.AccessToken)
	if failed.AccessToken == s.current {
		s.current = "tok-2"
	}
}

func newClient(t *testing.T, ts TokenSource, opts ...Option) *Client {
	t.Helper()
	c, err := New(ts, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestSessionExpiredRetriesOnceWithFreshToken(t *testing.T) {
	t.Parallel()
	f, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"DailyApiRequests":{"Max":15000,"Remaining":14000}}`)
	})
	f.valid = map[string]bool{"tok-2": true} // tok-1 has expired
	src := &rotatingSource{current: "tok-1", instance: srv.URL}
	c := newClient(t, src)

	lim, err := c.Limits(context.Background())
	if err != nil {
		t.Fatalf("Limits: %v", err)
	}
	if got := lim["DailyApiRequests"]; got.Max != 15000 || got.Remaining != 14000 {
		t.Errorf("DailyApiRequests = %+v", got)
	}
	if want := []string{"tok-1"}; fmt.Sprint(src.invalidated) != fmt.Sprint(want) {
		t.Errorf("invalidated %v, want exactly the failed token %v", src.invalidated, want)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("Salesforce saw %d calls, want 2 (the rejected one and its retry)", got)
	}
}

func TestSessionExpiredTwiceIsReported(t *testing.T) {
	t.Parallel()
	f, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {})
	f.valid = map[string]bool{}
	src := &rotatingSource{current: "tok-1", instance: srv.URL}
	c := newClient(t, src)

	_, err := c.Limits(context.Background())
	if Classify(err) != KindSessionExpired {
		t.Fatalf("Classify(%v) = %v, want session_expired", err, Classify(err))
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("Salesforce saw %d calls, want 2: one retry, no loop", got)
	}
}

func TestStaticTokenDoesNotRetry(t *testing.T) {
	t.Parallel()
	f, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {})
	f.valid = map[string]bool{}
	c := newClient(t, StaticToken("tok-x", srv.URL))
	_, err := c.Limits(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.ErrorCode != CodeInvalidSessionID {
		t.Fatalf("err = %v, want 401 INVALID_SESSION_ID", err)
	}
	if f.calls.Load() != 1 {
		t.Errorf("calls = %d, want 1", f.calls.Load())
	}
}

func TestQueryFollowsNextRecordsURLUpToMax(t *testing.T) {
	t.Parallel()
	const total = 7
	var pages atomic.Int64
	_, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {
		start := 0
		if strings.HasPrefix(r.URL.Path, "/services/data/v66.0/query/loc-") {
			start, _ = strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/services/data/v66.0/query/loc-"))
		} else if r.URL.Path != "/services/data/v66.0/query" || r.URL.Query().Get("q") == "" {
			t.Errorf("unexpected request %s", r.URL)
		}
		if got := r.Header.Get("Sforce-Query-Options"); got != "batchSize=200" {
			t.Errorf("Sforce-Query-Options = %q", got)
		}
		pages.Add(1)
		end := min(start+2, total)
		var recs []string
		for i := start; i < end; i++ {
			recs = append(recs, fmt.Sprintf(`{"attributes":{"type":"Contact","url":"/x"},"Id":"003%015d","N":%d}`, i, i))
		}
		next := ""
		if end < total {
			next = fmt.Sprintf(`,"nextRecordsUrl":"/services/data/v66.0/query/loc-%d"`, end)
		}
		fmt.Fprintf(w, `{"totalSize":%d,"done":%v%s,"records":[%s]}`, total, end == total, next, strings.Join(recs, ","))
	})
	c := newClient(t, StaticToken("tok-1", srv.URL))

	tests := []struct {
		name      string
		max       int
		wantLen   int
		wantDone  bool
		wantPages int64
	}{
		{"all pages", 100, 7, true, 4},
		{"stops at max mid-page", 3, 3, false, 2},
		{"stops at page boundary", 4, 4, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages.Store(0)
			res, err := c.Query(context.Background(), "SELECT Id FROM Contact", MaxRecords(tt.max), BatchSize(200))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Records) != tt.wantLen || res.Done != tt.wantDone || res.TotalSize != total {
				t.Errorf("got %d records, done=%v, total=%d; want %d, %v, %d", len(res.Records), res.Done, res.TotalSize, tt.wantLen, tt.wantDone, total)
			}
			if pages.Load() != tt.wantPages {
				t.Errorf("pages fetched = %d, want %d", pages.Load(), tt.wantPages)
			}
			if n, ok := res.Records[0]["N"].(json.Number); !ok || n.String() != "0" {
				t.Errorf("first record N = %#v, want json.Number 0", res.Records[0]["N"])
			}
		})
	}
}

func TestQueryRefusesForeignNextRecordsURL(t *testing.T) {
	t.Parallel()
	_, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"totalSize":5,"done":false,"nextRecordsUrl":"https://evil.example/steal","records":[{"Id":"1"}]}`)
	})
	c := newClient(t, StaticToken("tok-1", srv.URL))
	if _, err := c.Query(context.Background(), "SELECT Id FROM Contact"); err == nil || !strings.Contains(err.Error(), "nextRecordsUrl") {
		t.Fatalf("err = %v, want a refusal of the foreign nextRecordsUrl", err)
	}
}

func TestErrorParsingAndClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		wantCode   string
		wantKind   Kind
		wantFields []string
	}{
		{"malformed query", 400, `[{"message":"\nSELECT Idd FROM Contact\n       ^\nERROR at Row:1:Column:8\nNo such column 'Idd'","errorCode":"MALFORMED_QUERY"}]`, CodeMalformedQuery, KindPermanent, nil},
		{"required field", 400, `[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]`, CodeRequiredFieldMissing, KindPermanent, []string{"LastName"}},
		{"duplicate", 400, `[{"message":"duplicate value found","errorCode":"DUPLICATE_VALUE","fields":[]}]`, CodeDuplicateValue, KindPermanent, []string{}},
		{"validation rule", 400, `[{"message":"Phone is required","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","fields":[]}]`, CodeValidationRule, KindPermanent, []string{}},
		{"not found", 404, `[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]`, CodeNotFound, KindPermanent, nil},
		{"lock", 400, `[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW","fields":[]}]`, CodeUnableToLockRow, KindTransient, []string{}},
		{"rate limited", 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, CodeRequestLimit, KindRateLimited, nil},
		{"server unavailable", 503, `[{"message":"Server unavailable","errorCode":"SERVER_UNAVAILABLE"}]`, CodeServerUnavailable, KindTransient, nil},
		{"html 502 from a proxy", 502, `<html>bad gateway</html>`, CodeHTTPError, KindTransient, nil},
		{"html 503", 503, `<html>down</html>`, CodeServerUnavailable, KindTransient, nil},
		{"internal error", 500, `[{"message":"An unexpected error occurred","errorCode":"UNKNOWN_EXCEPTION"}]`, "UNKNOWN_EXCEPTION", KindTransient, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c := newClient(t, StaticToken("tok-1", srv.URL))
			_, err := c.Query(context.Background(), "SELECT Id FROM Contact")
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.ErrorCode != tt.wantCode {
				t.Errorf("got %d %s, want %d %s", apiErr.StatusCode, apiErr.ErrorCode, tt.status, tt.wantCode)
			}
			if fmt.Sprint(apiErr.Fields) != fmt.Sprint(tt.wantFields) {
				t.Errorf("fields = %v, want %v", apiErr.Fields, tt.wantFields)
			}
			if got := Classify(err); got != tt.wantKind {
				t.Errorf("Classify = %v, want %v", got, tt.wantKind)
			}
			if string(apiErr.Body) != tt.body {
				t.Errorf("Body = %q, want the raw body", apiErr.Body)
			}
			if !errors.Is(err, &APIError{ErrorCode: tt.wantCode}) {
				t.Errorf("errors.Is by code failed")
			}
		})
	}
}

func TestClassifyTransportFailures(t *testing.T) {
	// A listener that is closed at once: connections are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, StaticToken("tok-1", "http://"+addr))
	_, err = c.Limits(context.Background())
	if Classify(err) != KindTransient {
		t.Errorf("refused connection: Classify(%v) = %v, want transient", err, Classify(err))
	}

	// A server slower than the context deadline.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	c = newClient(t, StaticToken("tok-1", slow.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Limits(ctx)
	if Classify(err) != KindTransient || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: err = %v (kind %v), want transient wrapping DeadlineExceeded", err, Classify(err))
	}
	if Classify(nil) != KindNone {
		t.Errorf("Classify(nil) != KindNone")
	}
}

func TestLimitInfoObserved(t *testing.T) {
	t.Parallel()
	_, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{}`)
	})
	var seen []Usage
	var mu sync.Mutex
	c := newClient(t, StaticToken("tok-1", srv.URL), WithUsageObserver(func(u Usage) {
		mu.Lock()
		seen = append(seen, u)
		mu.Unlock()
	}))
	if _, ok := c.Usage(); ok {
		t.Fatal("Usage reported before any call")
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Limits(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	u, ok := c.Usage()
	if !ok || u != (Usage{Used: 2, Max: 15000}) {
		t.Errorf("Usage = %+v %v, want 2/15000", u, ok)
	}
	if len(seen) != 2 || seen[0].Used != 1 {
		t.Errorf("observer saw %+v", seen)
	}
}

func TestParseLimitInfo(t *testing.T) {
	tests := []struct {
		given  string
		want   Usage
		wantOK bool
	}{
		{"api-usage=18/5000", Usage{18, 5000}, true},
		{"api-usage=25/15000; per-app-api-usage=17/250(appName=sample-app)", Usage{25, 15000}, true},
		{"per-app-api-usage=17/250(appName=x); api-usage=3/100", Usage{3, 100}, true},
		{"api-usage=abc/100", Usage{}, false},
		{"", Usage{}, false},
		{"api-usage=5", Usage{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseLimitInfo(tt.given)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseLimitInfo(%q) = %+v, %v; want %+v, %v", tt.given, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestUpsertStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		body        string
		wantCreated bool
		wantErrCode string
		wantMatches int
	}{
		{"created", 201, `{"id":"003000000000001AAA","success":true,"errors":[],"created":true}`, true, "", 0},
		{"updated", 200, `{"id":"003000000000001AAA","success":true,"errors":[],"created":false}`, false, "", 0},
		{"updated, old API version", 204, ``, false, "", 0},
		{"several matches", 300, `["/services/data/v66.0/sobjects/Contact/003000000000001AAA","/services/data/v66.0/sobjects/Contact/003000000000002AAA"]`, false, CodeMultipleChoices, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPatch || r.URL.EscapedPath() != "/services/data/v66.0/sobjects/Contact/External_Id__c/ext%2F1%20a" {
					t.Errorf("request %s %s", r.Method, r.URL.EscapedPath())
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c := newClient(t, StaticToken("tok-1", srv.URL))
			res, err := c.Upsert(context.Background(), "Contact", "External_Id__c", "ext/1 a", map[string]any{"LastName": "X"})
			if tt.wantErrCode != "" {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode != tt.wantErrCode || len(apiErr.Matches) != tt.wantMatches {
					t.Fatalf("err = %v, want %s with %d matches", err, tt.wantErrCode, tt.wantMatches)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Created != tt.wantCreated || !res.Success {
				t.Errorf("res = %+v, want created=%v", res, tt.wantCreated)
			}
		})
	}
}

func TestInvalidNamesNeverReachSalesforce(t *testing.T) {
	t.Parallel()
	f, srv := newFakeOrg(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, StaticToken("tok-1", srv.URL))
	ctx := context.Background()
	for _, name := range []string{"", "../limits", "Contact/003", "Contact?x=1", "1Contact", "Con tact", strings.Repeat("a", 81)} {
		if _, err := c.Create(ctx, name, nil); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q): err = %v, want ErrInvalidName", name, err)
		}
		if _, err := c.Upsert(ctx, "Contact", name, "v", nil); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Upsert field %q: err = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := c.CreateCollection(ctx, make([]Record, MaxCollectionRecords+1), false); err == nil {
		t.Error("CreateCollection accepted 201 records")
	}
	if f.calls.Load() != 0 {
		t.Errorf("Salesforce saw %d calls, want none", f.calls.Load())
	}
}

func TestOptionsValidate(t *testing.T) {
	ts := StaticToken("t", "http://x")
	tests := []struct {
		name string
		opt  Option
	}{
		{"bad version", WithAPIVersion("66")},
		{"relative instance", WithInstanceURL("/services")},
		{"ftp instance", WithInstanceURL("ftp://x")},
		{"nil http client", WithHTTPClient(nil)},
		{"zero timeout", WithTimeout(0)},
	}
	for _, tt := range tests {
		if _, err := New(ts, tt.opt); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) accepted a nil token source")
	}
	c, err := New(ts, WithAPIVersion("v62.0"))
	if err != nil || c.APIVersion() != "62.0" {
		t.Errorf("WithAPIVersion(v62.0): %v, %q", err, c.APIVersion())
	}
}

func TestRecordFieldsStripsAttributes(t *testing.T) {
	r := Record{
		"attributes": map[string]any{"type": "Contact"},
		"Id":         "003",
		"Account":    map[string]any{"attributes": map[string]any{"type": "Account"}, "Name": "Acme"},
		"Owner":      nil,
	}
	got, _ := json.Marshal(r.Fields())
	if want := `{"Account":{"Name":"Acme"},"Id":"003","Owner":null}`; string(got) != want {
		t.Errorf("Fields() = %s, want %s", got, want)
	}
	if r.Type() != "Contact" {
		t.Errorf("Type() = %q", r.Type())
	}
	if _, ok := r["attributes"]; !ok {
		t.Error("Fields() modified the record")
	}
}
