package worker

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// startWorker builds and starts a worker, stopped at the end of the test.
func startWorker(t *testing.T, nc *nats.Conn, h Handler, opts ...Option) *Worker {
	t.Helper()
	// The tests collect replies on reply.<id>.
	opts = append([]Option{WithReplySubjects("_INBOX.>", "reply.>")}, opts...)
	w, err := New(nc, h, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Stop(ctx)
	})
	return w
}

// fakeHandler answers ok echoing the job id, optionally holding each job
// until release is closed (or the job's context ends), and records how many
// jobs ran at once.
type fakeHandler struct {
	release  chan struct{} // nil: answer at once
	ignore   bool          // keep holding even when ctx is cancelled
	tag      string        // put in reply.Account, to tell workers apart
	entered  chan struct{} // receives one value per job that started (buffered)
	calls    atomic.Int64
	cur      atomic.Int64
	maxMu    sync.Mutex
	max      int64
	idsMu    sync.Mutex
	ids      []string
	response func(id string) *sfblocks.Reply // nil: status ok
}

func newFake(hold bool) *fakeHandler {
	f := &fakeHandler{entered: make(chan struct{}, 10000)}
	if hold {
		f.release = make(chan struct{})
	}
	return f
}

func (f *fakeHandler) Handle(ctx context.Context, block sfblocks.Block, payload []byte) *sfblocks.Reply {
	f.calls.Add(1)
	n := f.cur.Add(1)
	defer f.cur.Add(-1)
	f.maxMu.Lock()
	if n > f.max {
		f.max = n
	}
	f.maxMu.Unlock()
	var req struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(payload, &req)
	f.idsMu.Lock()
	f.ids = append(f.ids, req.ID)
	f.idsMu.Unlock()
	f.entered <- struct{}{}
	if f.release != nil {
		if f.ignore {
			<-f.release
		} else {
			select {
			case <-f.release:
			case <-ctx.Done():
				return blocks.FailureReply(req.ID, &sfblocks.Error{Code: sfblocks.CodeTimeout, Message: "cancelled", Retryable: true})
			}
		}
	}
	if f.response != nil {
		return f.response(req.ID)
	}
	return &sfblocks.Reply{ID: req.ID, Account: f.tag, Status: sfblocks.StatusOK, DurationMS: 1}
}

func (f *fakeHandler) maxConcurrent() int64 {
	f.maxMu.Lock()
	defer f.maxMu.Unlock()
	return f.max
}

// waitEntered waits until n more jobs have started in f.
func (f *fakeHandler) waitEntered(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-f.entered:
		case <-timeout:
			t.Fatalf("only %d of %d jobs started", i, n)
		}
	}
}

// replies collects replies published to "reply.<n>" by raw requests, so a
// test can send many jobs without a goroutine each and read the headers.
type replies struct {
	sub *nats.Subscription
	nc  *nats.Conn
}

func newReplies(t *testing.T, nc *nats.Conn) *replies {
	t.Helper()
	sub, err := nc.SubscribeSync("reply.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	return &replies{sub: sub, nc: nc}
}

// send publishes a job on subject with reply subject "reply.<id>" and
// flushes, so that the server has routed it when send returns.
func (r *replies) send(t *testing.T, subject, id string) {
	t.Helper()
	data, _ := json.Marshal(map[string]string{"id": id})
	if err := r.nc.PublishRequest(subject, "reply."+id, data); err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// next returns the next reply and its decoded body.
func (r *replies) next(t *testing.T) (*nats.Msg, *sfblocks.Reply) {
	t.Helper()
	msg, err := r.sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("waiting for a reply: %v", err)
	}
	var rep sfblocks.Reply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		t.Fatalf("reply %q is not JSON: %v", msg.Data, err)
	}
	return msg, &rep
}

// none checks that no further reply arrives after a round trip.
func (r *replies) none(t *testing.T) {
	t.Helper()
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := r.sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("unexpected extra reply on %s: %s", msg.Subject, msg.Data)
	}
}
