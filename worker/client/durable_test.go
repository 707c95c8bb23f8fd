package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

var fastDurable = worker.WithDurable(worker.DurableConfig{AckWait: time.Second, FetchWait: 200 * time.Millisecond})

// counting echoes the job's id and counts runs.
func counting(n *atomic.Int64) worker.HandlerFunc {
	return func(_ context.Context, block sfblocks.Block, payload []byte) *sfblocks.Reply {
		n.Add(1)
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(payload, &p)
		if strings.Contains(string(payload), `"account":"fail"`) {
			return blocks.FailureReply(p.ID, &sfblocks.Error{Code: sfblocks.CodeSalesforceError, Message: "refused", SalesforceCode: "INVALID_FIELD"})
		}
		return &sfblocks.Reply{ID: p.ID, Status: sfblocks.StatusOK, ObjectID: "003" + p.ID}
	}
}

func TestDoDurable(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	var runs atomic.Int64
	startWorker(t, s, counting(&runs), fastDurable)
	c, err := client.New(workertest.Connect(t, s), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// No id: one is generated and written into the job.
	rep, err := c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{Object: "Task"})
	if err != nil || rep.Status != sfblocks.StatusOK || rep.ID == "" || rep.ObjectID != "003"+rep.ID || rep.Attempt != 1 {
		t.Fatalf("DoDurable = %+v, %v", rep, err)
	}
	kept, err := c.Result(ctx, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: rep.ID})
	if err != nil || kept.ObjectID != rep.ObjectID {
		t.Errorf("Result = %+v, %v", kept, err)
	}

	// The same id again within the duplicate window: nothing new is
	// stored, and the kept result answers.
	rep1, err := c.DoDurable(ctx, sfblocks.Insert, map[string]any{"id": "dup-1", "object": "Task"})
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := c.DoDurable(ctx, sfblocks.Insert, json.RawMessage(`{"id":"dup-1","object":"Task"}`))
	if err != nil || rep2.ObjectID != rep1.ObjectID {
		t.Errorf("second DoDurable = %+v, %v; want the first result", rep2, err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}

	// A failed job gives its reply and a coded error, as Do.
	rep, err = c.DoDurable(ctx, sfblocks.Search, &sfblocks.SearchRequest{ID: "f1", Account: "fail"})
	if rep == nil || rep.Status != sfblocks.StatusFailed || !errors.Is(err, sfblocks.ErrSalesforceError) {
		t.Errorf("failed job: %+v, %v", rep, err)
	}
}

func TestPublishDurableAndResult(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	var runs atomic.Int64
	startWorker(t, s, counting(&runs), fastDurable)
	nc := workertest.Connect(t, s)
	c, _ := client.New(nc)
	ctx := context.Background()

	if _, err := c.Result(ctx, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "never-sent"}); !errors.Is(err, client.ErrNoResult) {
		t.Errorf("Result of an unknown job = %v, want ErrNoResult", err)
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.PublishDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "p-1", Object: "Task"}, client.WithReplyTo(inbox))
	if err != nil || id != "p-1" {
		t.Fatalf("PublishDurable = %q, %v", id, err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"id":"p-1"`) {
		t.Fatalf("reply = %v, %v", msg, err)
	}
	// Fire and forget: the result is kept.
	id, err = c.PublishDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{Object: "Task"})
	if err != nil || id == "" {
		t.Fatal(err)
	}
	var rep *sfblocks.Reply
	workertest.WaitFor(t, 10*time.Second, "the kept result of "+id, func() bool {
		var err error
		if rep, err = c.Result(ctx, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: id}); err != nil && !errors.Is(err, client.ErrNoResult) {
			t.Fatalf("Result = %v", err)
		}
		return err == nil
	})
	if rep.ID != id {
		t.Errorf("kept result %+v, want id %s", rep, id)
	}
	if _, err := c.PublishDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{}, client.WithReplyTo("a.>")); !errors.Is(err, client.ErrInvalidOption) {
		t.Errorf("bad reply subject: %v", err)
	}
}

func TestDurableWithoutStream(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	c, _ := client.New(workertest.Connect(t, s), client.WithPrefix("nobody"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.PublishDurable(ctx, sfblocks.Search, &sfblocks.SearchRequest{})
	if !errors.Is(err, client.ErrNoStream) || !errors.Is(err, sfblocks.ErrSalesforceUnavailable) {
		t.Errorf("PublishDurable without a stream = %v, want ErrNoStream", err)
	}
}
