package worker

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// The faults below each made a record twice, or answered a job wrongly,
// before claims, reconciliation and fleet settings with one owner.

// slowSim makes every Salesforce call take d.
func slowSim(t *testing.T, e *exo, d time.Duration) {
	t.Helper()
	if err := e.sim.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(d)}); err != nil {
		t.Fatal(err)
	}
}

// A durable create still running when the drain timeout cuts it short
// commits anyway; the next worker reconciles it instead of creating again.
// A synchronous insert cut short the same way is dead-lettered, and the
// caller's retry with the same id finds the record.
func TestDrainDeadlineNeverDuplicates(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	slowSim(t, e, 1500*time.Millisecond)
	a := e.worker(nil, exoFast, WithDrainTimeout(300*time.Millisecond))
	next := e.replies("reply.drain")
	e.publish(sfblocks.Insert, "", "drain-d", taskJob("drain-d", "drain durable"), "reply.drain")
	syncReply := make(chan *sfblocks.Reply, 1)
	go func() { syncReply <- e.request(sfblocks.Insert, taskJob("drain-s", "drain sync")) }()
	workertest.WaitFor(t, 10*time.Second, "both inserts in flight", func() bool { return a.InFlight() == 2 })
	time.Sleep(200 * time.Millisecond) // the requests reach the simulator
	_ = a.Stop(context.Background())

	r := <-syncReply
	if r.Status != sfblocks.StatusFailed || r.Error.Code != sfblocks.CodeTimeout || !r.Error.Retryable {
		t.Fatalf("cut-short sync insert = %+v %+v, want a retryable TIMEOUT", r, r.Error)
	}
	workertest.WaitFor(t, 10*time.Second, "the cut-short sync insert's dead letter", func() bool { return e.deadLetter(sfblocks.Insert, "drain-s") != nil })

	e.worker(nil, exoFast)
	d := next(1)[0]
	if d.Status != sfblocks.StatusOK {
		t.Fatalf("durable insert after the drain = %+v %+v, want ok", d, d.Error)
	}
	if ids := e.records("drain durable"); len(ids) != 1 || ids[0] != d.ObjectID {
		t.Errorf("Salesforce holds %v for the durable insert, want exactly [%s]", ids, d.ObjectID)
	}
	again := e.request(sfblocks.Insert, taskJob("drain-s", "drain sync"))
	if ids := e.records("drain sync"); again.Status != sfblocks.StatusOK || len(ids) != 1 || ids[0] != again.ObjectID {
		t.Errorf("sync retry = %+v %+v; Salesforce holds %v: want ok with the one record", again, again.Error, ids)
	}
}

// A worker started with another --ack-wait keeps the fleet's consumer as
// it is, says so, and signals progress at the consumer's own AckWait: a
// job slower than the shorter of the two AckWaits runs once and is never
// redelivered, whichever worker was started first.
func TestMixedAckWaitRunsEachJobOnce(t *testing.T) {
	t.Parallel()
	short, long := exoFast, exoFast
	long.AckWait = 30 * time.Second
	tests := []struct {
		name          string
		first, second DurableConfig
		wantLog       string
	}{
		{"short worker joins a long fleet", long, short, "consumer insert AckWait: fleet has 30s, flags say 2s"},
		{"long worker joins a short fleet", short, long, "consumer insert AckWait: fleet has 2s, flags say 30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExo(t)
			m := newTestMetrics(t)
			first := e.worker(nil, tt.first, WithMetrics(m))
			second := e.worker(nil, tt.second, WithMetrics(m))
			if !strings.Contains(e.logs.String(), tt.wantLog) {
				t.Errorf("no error naming the AckWait difference (%q); logs:\n%s", tt.wantLog, e.logs)
			}
			// One of them runs the job alone.
			if tt.first.AckWait < tt.second.AckWait {
				_ = first.Stop(context.Background())
			} else {
				_ = second.Stop(context.Background())
			}
			slowSim(t, e, 3*time.Second)
			next := e.replies("reply.ack")
			e.publish(sfblocks.Insert, "", "ack-1", taskJob("ack-1", "slow job"), "reply.ack")
			r := next(1)[0]
			if r.Status != sfblocks.StatusOK {
				t.Fatalf("reply = %+v %+v", r, r.Error)
			}
			if got := counterValue(t, m.DurableRedelivered.WithLabelValues(string(sfblocks.Insert))); got != 0 {
				t.Errorf("redelivered %v times, want 0", got)
			}
			if got := e.sim.Stats().APICalls["create"]; got != 1 {
				t.Errorf("creates sent = %d, want 1", got)
			}
			if ids := e.records("slow job"); len(ids) != 1 {
				t.Errorf("Salesforce holds %v, want one record", ids)
			}
		})
	}
}

// A worker started with small flags leaves the fleet's consumers as they
// are, and logs the difference.
func TestSmallFlagsDoNotShrinkTheFleet(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.worker(nil, exoFast) // MaxAckPending 8 × 256
	small := e.worker(nil, exoFast, WithMaxInFlight(4))
	_ = small.Stop(context.Background())
	for _, b := range sfblocks.Blocks() {
		c, err := e.js.Consumer(context.Background(), sfblocks.DefaultJobsStream, string(b))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.CachedInfo().Config.MaxAckPending; got != 8*DefaultMaxInFlight {
			t.Errorf("consumer %s MaxAckPending = %d, want %d kept", b, got, 8*DefaultMaxInFlight)
		}
	}
	if !strings.Contains(e.logs.String(), "MaxAckPending: fleet has 2048, flags say 32") {
		t.Errorf("no error naming the MaxAckPending difference; logs:\n%s", e.logs)
	}
	// The operator changes the fleet on purpose.
	changed, err := ApplyFleet(context.Background(), e.js, sfblocks.DefaultPrefix, exoFast, 4)
	if err != nil || len(changed) != 2 {
		t.Fatalf("ApplyFleet = %v, %v; want the two consumers updated", changed, err)
	}
	diffs, err := CheckFleet(context.Background(), e.js, sfblocks.DefaultPrefix, exoFast, 4)
	if err != nil || len(diffs) != 0 {
		t.Errorf("CheckFleet after ApplyFleet = %v, %v; want no difference", diffs, err)
	}
}

// A worker cut off from NATS longer than AckWait while its create is
// running: JetStream gives the job to another worker, which waits for the
// first one's claim instead of creating again.
func TestPartitionedWorkerJobRunsOnce(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	slowSim(t, e, 1500*time.Millisecond)
	proxy := workertest.StartProxy(t, e.ns.Addr().String())
	nc, err := nats.Connect(proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	a := e.worker(nc, exoFast)
	next := e.replies("reply.part")
	e.publish(sfblocks.Insert, "", "part-1", taskJob("part-1", "partitioned"), "reply.part")
	workertest.WaitFor(t, 10*time.Second, "the insert running on the partitioned worker", func() bool { return a.InFlight() == 1 })
	proxy.Cut()
	e.worker(nil, exoFast) // takes the redelivery after AckWait (2s)
	time.Sleep(4 * time.Second)
	proxy.Restore()
	rs := next(1)
	if rs[0].Status != sfblocks.StatusOK {
		t.Fatalf("reply = %+v %+v", rs[0], rs[0].Error)
	}
	if got := e.sim.Stats().APICalls["create"]; got != 1 {
		t.Errorf("creates sent = %d, want 1", got)
	}
	if ids := e.records("partitioned"); len(ids) != 1 || ids[0] != rs[0].ObjectID {
		t.Errorf("Salesforce holds %v, want exactly [%s]", ids, rs[0].ObjectID)
	}
}

// A job published again after the duplicate window (another Nats-Msg-Id)
// while its first run is still going: both deliveries are answered with
// the one record.
func TestRepublishAfterDuplicateWindowRunsOnce(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	slowSim(t, e, time.Second)
	e.worker(nil, exoFast)
	e.worker(nil, exoFast)
	next := e.replies("reply.rep")
	payload := taskJob("rep-1", "republished")
	for _, msgID := range []string{"first-publish", "after-the-window"} {
		msg := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Insert), Data: []byte(payload),
			Header: nats.Header{sfblocks.HeaderReplyTo: []string{"reply.rep"}}}
		if _, err := e.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(msgID)); err != nil {
			t.Fatal(err)
		}
	}
	rs := next(2)
	if rs[0].Status != sfblocks.StatusOK || rs[1].ObjectID != rs[0].ObjectID {
		t.Fatalf("replies %+v / %+v, want the same record twice", rs[0], rs[1])
	}
	if got := e.sim.Stats().APICalls["create"]; got != 1 {
		t.Errorf("creates sent = %d, want 1", got)
	}
	if ids := e.records("republished"); len(ids) != 1 {
		t.Errorf("Salesforce holds %v, want one record", ids)
	}
}

// A synchronous job whose deadline passed while it waited for a slot is
// answered TIMEOUT, not started.
func TestBacklogHonoursDeadlines(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(true)
	w := startWorker(t, workertest.Connect(t, s), f, WithMaxInFlight(1))
	w.cfg.defaultJobTimeout = 100 * time.Millisecond
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.search", "held")
	f.waitEntered(t, 1)
	r.send(t, "sfblocks.search", "waits")
	time.Sleep(250 * time.Millisecond)
	close(f.release)
	got := map[string]*sfblocks.Reply{}
	for range 2 {
		_, rep := r.next(t)
		got[rep.ID] = rep
	}
	if rep := got["waits"]; rep == nil || rep.Status != sfblocks.StatusFailed || rep.Error.Code != sfblocks.CodeTimeout ||
		!strings.Contains(rep.Error.Message, "not started") {
		t.Errorf("job that outwaited its deadline = %+v, want TIMEOUT, not started", rep)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("handler ran %d jobs, want 1", n)
	}
	if got := counterValue(t, w.m.Expired); got != 1 {
		t.Errorf("expired in backlog = %v, want 1", got)
	}
}

// A job of the largest size NATS carries, not JSON, is dead-lettered
// intact, by reference, instead of being handed back forever.
func TestLargestBinaryPoisonJobIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	m := newTestMetrics(t)
	e.worker(nil, exoFast, WithMetrics(m))
	payload := bytes.Repeat([]byte{0xff, 0x00, 0x7f}, int(e.nc.MaxPayload()-1024)/3)
	var replies atomic.Int64
	sub, err := e.nc.Subscribe("reply.poison", func(*nats.Msg) { replies.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	msg := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Insert), Data: payload,
		Header: nats.Header{sfblocks.HeaderReplyTo: []string{"reply.poison"}, sfblocks.HeaderJobID: []string{"poison-1"}}}
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	var dl *sfblocks.DeadLetter
	workertest.WaitFor(t, 20*time.Second, "the poison job's dead letter", func() bool {
		dl = e.deadLetter(sfblocks.Insert, "poison-1")
		return dl != nil
	})
	if dl.Error.Code != sfblocks.CodeInvalidRequest || dl.PayloadRef == "" || dl.Payload != nil || dl.PayloadBase64 != nil {
		t.Fatalf("dead letter = %+v, want INVALID_REQUEST with its payload by reference", dl)
	}
	bucket, name, _ := strings.Cut(dl.PayloadRef, "/")
	obj, err := e.js.ObjectStore(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := obj.GetBytes(context.Background(), name)
	if err != nil || !bytes.Equal(kept, payload) {
		t.Fatalf("kept payload: %d bytes, %v; want the job's %d bytes intact", len(kept), err, len(payload))
	}
	workertest.WaitFor(t, 10*time.Second, "the poison job's reply", func() bool { return replies.Load() == 1 })
	workertest.WaitFor(t, 10*time.Second, "an empty jobs stream", func() bool {
		s, _ := e.js.Stream(context.Background(), sfblocks.DefaultJobsStream)
		info, _ := s.Info(context.Background())
		return info.State.Msgs == 0
	})
	if n := counterValue(t, m.DeadLettered.WithLabelValues(string(sfblocks.Insert), sfblocks.PathDurable, sfblocks.ReasonPermanent)); n != 1 {
		t.Errorf("dead-lettered = %v, want 1", n)
	}
}
