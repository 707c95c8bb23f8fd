package blocks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
)

// TestMayHaveSaved runs a create (and, where it matters, an upsert and a
// search) that fails in each way a call can fail, and checks which failed
// replies say the record may nevertheless exist.
func TestMayHaveSaved(t *testing.T) {
	const create = `{"id":"c","object":"Task","fields":{"Subject":"x"}}`
	const upsert = `{"id":"u","object":"Task","fields":{"Subject":"x"},"external_id":{"field":"External_Id__c","value":"v"}}`
	tests := []struct {
		name    string
		payload string
		given   error
		want    bool
	}{
		{"lock row answered by Salesforce", create, &salesforce.APIError{StatusCode: 400, ErrorCode: salesforce.CodeUnableToLockRow}, false},
		{"503 answered by Salesforce", create, &salesforce.APIError{StatusCode: 503, ErrorCode: salesforce.CodeServerUnavailable}, false},
		{"proxy 502 without Salesforce's body", create, &salesforce.APIError{StatusCode: 502, ErrorCode: salesforce.CodeHTTPError}, true},
		{"proxy 403 without Salesforce's body", create, &salesforce.APIError{StatusCode: 403, ErrorCode: salesforce.CodeHTTPError}, false},
		{"open breaker", create, fmt.Errorf("salesforce: POST: %w", &breaker.OpenError{Account: "a", RetryAt: time.Now()}), false},
		{"no token", create, &salesforce.TokenError{Err: errors.New("token endpoint down")}, false},
		{"connection refused", create, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
		{"dial error", create, &net.OpError{Op: "dial", Err: errors.New("no route")}, false},
		{"name does not resolve", create, &net.DNSError{Err: "no such host", Name: "x.invalid"}, false},
		{"connection dropped after the request", create, fmt.Errorf("salesforce: POST: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", create, &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"deadline passed", create, context.DeadlineExceeded, true},
		{"upsert dropped", upsert, io.ErrUnexpectedEOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{save: func(context.Context, map[string]any) (*salesforce.SaveResult, error) { return nil, tt.given }}
			r := newTestExecutor(t, api).Handle(context.Background(), sfblocks.Insert, []byte(tt.payload))
			if r.Status != sfblocks.StatusFailed {
				t.Fatalf("reply = %+v, want a failure", r)
			}
			if got := MayHaveSaved(r); got != tt.want {
				t.Errorf("MayHaveSaved = %v, want %v (reply %+v)", got, tt.want, r.Error)
			}
		})
	}
	t.Run("invalid job", func(t *testing.T) {
		r := newTestExecutor(t, nil).Handle(context.Background(), sfblocks.Insert, []byte(`{"object":"Task"}`))
		if MayHaveSaved(r) {
			t.Error("an invalid job never reached Salesforce")
		}
	})
	t.Run("panic during the call", func(t *testing.T) {
		api := &fakeAPI{save: func(context.Context, map[string]any) (*salesforce.SaveResult, error) { panic("boom") }}
		r := newTestExecutor(t, api).Handle(context.Background(), sfblocks.Insert, []byte(create))
		if !MayHaveSaved(r) {
			t.Error("a create that panicked mid-call may have saved")
		}
	})
	t.Run("search", func(t *testing.T) {
		api := &fakeAPI{query: func(context.Context, string) (*salesforce.QueryResult, error) { return nil, io.ErrUnexpectedEOF }}
		r := newTestExecutor(t, api).Handle(context.Background(), sfblocks.Search, []byte(`{"query":"SELECT Id FROM Task"}`))
		if MayHaveSaved(r) {
			t.Error("a search saves nothing")
		}
	})
	t.Run("decoded reply", func(t *testing.T) {
		if MayHaveSaved(&sfblocks.Reply{Status: sfblocks.StatusFailed, Error: &sfblocks.ErrorInfo{Code: sfblocks.CodeTimeout}}) {
			t.Error("a reply without a cause cannot be judged")
		}
	})
}
