package breaker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestResponseOutcome(t *testing.T) {
	limitBody := `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`
	tests := []struct {
		name        string
		status      int
		body        string
		wantFailure bool
	}{
		{name: "200", status: 200, body: `{"totalSize":0}`},
		{name: "201", status: 201, body: `{"id":"003"}`},
		{name: "300 multiple choices", status: 300, body: `["/x","/y"]`},
		{name: "400 malformed query", status: 400, body: `[{"errorCode":"MALFORMED_QUERY"}]`},
		{name: "400 invalid_grant", status: 400, body: `{"error":"invalid_grant","error_description":"expired access/refresh token"}`},
		{name: "401", status: 401, body: `[{"errorCode":"INVALID_SESSION_ID"}]`},
		{name: "403 insufficient access", status: 403, body: `[{"errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]`},
		{name: "403 limit exceeded", status: 403, body: limitBody, wantFailure: true},
		{name: "403 limit exceeded, single object", status: 403, body: `{"errorCode":"REQUEST_LIMIT_EXCEEDED"}`, wantFailure: true},
		{name: "403 html", status: 403, body: `<html>REQUEST_LIMIT_EXCEEDED</html>`},
		{name: "404", status: 404, body: `[{"errorCode":"NOT_FOUND"}]`},
		{name: "408", status: 408, wantFailure: true},
		{name: "429", status: 429, wantFailure: true},
		{name: "500", status: 500, body: `[{"errorCode":"UNKNOWN_EXCEPTION"}]`, wantFailure: true},
		{name: "503", status: 503, body: `[{"errorCode":"SERVER_UNAVAILABLE"}]`, wantFailure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &http.Response{StatusCode: tt.status, Body: io.NopCloser(strings.NewReader(tt.body))}
			body, outcome := responseOutcome(res)
			var f *failure
			if got := errors.As(outcome, &f); got != tt.wantFailure || (!got && outcome != nil) {
				t.Fatalf("outcome = %v; want failure %v", outcome, tt.wantFailure)
			}
			rest, err := io.ReadAll(body)
			if err != nil || string(rest) != tt.body {
				t.Fatalf("body handed on = %q, %v; want %q", rest, err, tt.body)
			}
		})
	}
}

func TestErrOutcome(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	const slow = 5 * time.Second
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		waited time.Duration
		want   string // "excluded" or "failure"
	}{
		{name: "refused", ctx: context.Background(), err: syscall.ECONNREFUSED, want: "failure"},
		{name: "reset", ctx: context.Background(), err: syscall.ECONNRESET, want: "failure"},
		{name: "EOF", ctx: context.Background(), err: io.EOF, want: "failure"},
		{name: "transport timeout, quick", ctx: context.Background(), err: context.DeadlineExceeded, waited: time.Millisecond, want: "failure"},
		{name: "the job's short deadline", ctx: expired, err: context.DeadlineExceeded, waited: 50 * time.Millisecond, want: "excluded"},
		{name: "a deadline after a long wait", ctx: expired, err: context.DeadlineExceeded, waited: slow, want: "failure"},
		{name: "cancelled by the caller", ctx: cancelled, err: context.Canceled, waited: slow, want: "excluded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errOutcome(tt.ctx, tt.err, tt.waited, slow)
			var f *failure
			switch {
			case tt.want == "excluded" && !errors.Is(got, errExcluded),
				tt.want == "failure" && !errors.As(got, &f):
				t.Fatalf("outcome = %v; want %s", got, tt.want)
			}
		})
	}
}
