package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// startWorker serves h on s with the given worker options.
func startWorker(t *testing.T, s *server.Server, h worker.Handler, opts ...worker.Option) {
	t.Helper()
	w, err := worker.New(workertest.Connect(t, s), h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
}

// echo answers ok (insert: with an object id), or fails when the request's
// account is "fail", or waits for release when it is "slow".
func echo(release <-chan struct{}) worker.HandlerFunc {
	return func(ctx context.Context, block sfblocks.Block, payload []byte) *sfblocks.Reply {
		if strings.Contains(string(payload), `"account":"slow"`) {
			<-release
			return blocks.FailureReply("slow", context.DeadlineExceeded)
		}
		if strings.Contains(string(payload), `"account":"fail"`) {
			return &sfblocks.Reply{ID: "f", Status: sfblocks.StatusFailed, ResultCode: 400, ResultBody: `[{"errorCode":"INVALID_FIELD"}]`,
				Error: &sfblocks.ErrorInfo{Code: sfblocks.CodeSalesforceError, Message: "No such column", SalesforceCode: "INVALID_FIELD"}}
		}
		n := 0
		r := &sfblocks.Reply{ID: string(block), Account: "main", Status: sfblocks.StatusNoData, Count: &n}
		if block == sfblocks.Insert {
			r = &sfblocks.Reply{ID: string(block), Account: "main", Status: sfblocks.StatusOK, ObjectID: "003xx"}
		}
		return r
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	startWorker(t, s, echo(nil))
	c, err := client.New(workertest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	rep, err := c.Search(ctx, &sfblocks.SearchRequest{Query: "SELECT Id FROM Contact"})
	if err != nil || rep.Status != sfblocks.StatusNoData || rep.ID != "search" || rep.Attempt != 1 {
		t.Errorf("Search = %+v, %v", rep, err)
	}
	rep, err = c.Insert(ctx, &sfblocks.InsertRequest{Object: "Contact", Fields: map[string]any{"LastName": "Doe"}})
	if err != nil || rep.Status != sfblocks.StatusOK || rep.ObjectID != "003xx" {
		t.Errorf("Insert = %+v, %v", rep, err)
	}

	rep, err = c.Search(ctx, &sfblocks.SearchRequest{Account: "fail", Query: "SELECT Nope FROM Contact"})
	if rep == nil || rep.Status != sfblocks.StatusFailed {
		t.Fatalf("failed job: reply %+v, want the failed reply", rep)
	}
	if !errors.Is(err, sfblocks.ErrSalesforceError) {
		t.Errorf("err = %v, want SALESFORCE_ERROR", err)
	}
	var be *sfblocks.Error
	if !errors.As(err, &be) || be.SalesforceCode != "INVALID_FIELD" || be.ResultCode != 400 || be.Retryable {
		t.Errorf("err details = %+v", be)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	release := make(chan struct{})
	startWorker(t, s, echo(release))
	t.Cleanup(func() { close(release) }) // before the worker's Stop: cleanups run last-in first-out
	nc := workertest.Connect(t, s)
	tests := []struct {
		name     string
		opts     []client.Option
		ctx      func() (context.Context, context.CancelFunc)
		req      *sfblocks.SearchRequest
		wantErr  error
		wantCode sfblocks.Code
	}{
		{
			name: "no workers on that prefix", opts: []client.Option{client.WithPrefix("other")},
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			req: &sfblocks.SearchRequest{}, wantErr: client.ErrNoWorkers, wantCode: sfblocks.CodeSalesforceUnavailable,
		},
		{
			name: "context deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			req: &sfblocks.SearchRequest{Account: "slow"}, wantErr: client.ErrTimeout, wantCode: sfblocks.CodeTimeout,
		},
		{
			name: "client timeout without deadline", opts: []client.Option{client.WithTimeout(200 * time.Millisecond)},
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			req: &sfblocks.SearchRequest{Account: "slow"}, wantErr: client.ErrTimeout, wantCode: sfblocks.CodeTimeout,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(nc, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tc.ctx()
			defer cancel()
			rep, err := c.Search(ctx, tc.req)
			if rep != nil {
				t.Errorf("reply = %+v, want nil", rep)
			}
			if !errors.Is(err, tc.wantErr) || !errors.Is(err, &sfblocks.Error{Code: tc.wantCode}) {
				t.Errorf("err = %v, want %v with code %s", err, tc.wantErr, tc.wantCode)
			}
		})
	}
}

func TestPrefixAndRawPayload(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	startWorker(t, s, echo(nil), worker.WithPrefix("acme.sf"), worker.WithServiceName("acme"))
	c, err := client.New(workertest.Connect(t, s), client.WithPrefix("acme.sf"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Do(context.Background(), sfblocks.Insert, []byte(`{"object":"Contact","fields":{}}`))
	if err != nil || rep.ObjectID != "003xx" {
		t.Errorf("Do = %+v, %v", rep, err)
	}
}

func TestBadReply(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	sub, err := nc.Subscribe("sfblocks.search", func(m *nats.Msg) { _ = m.Respond([]byte("not json")) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(workertest.Connect(t, s))
	if _, err := c.Search(context.Background(), &sfblocks.SearchRequest{}); !errors.Is(err, client.ErrBadReply) {
		t.Errorf("err = %v, want ErrBadReply", err)
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	for _, opt := range []client.Option{client.WithPrefix("a.>"), client.WithPrefix(""), client.WithTimeout(0)} {
		if _, err := client.New(nc, opt); !errors.Is(err, client.ErrInvalidOption) {
			t.Errorf("New = %v, want ErrInvalidOption", err)
		}
	}
	if _, err := client.New(nil); !errors.Is(err, client.ErrInvalidOption) {
		t.Errorf("New(nil) = %v", err)
	}
}
