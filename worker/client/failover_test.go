package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestPublishDurableThroughALeaderElection publishes durable jobs without
// pause while the node leading the jobs stream dies (no goodbye: the
// election takes the Raft timeout) and while another one shuts down
// (leadership handed over): every job is stored exactly once, none lost,
// none doubled, and no publish fails.
func TestPublishDurableThroughALeaderElection(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Raft elections with production timings")
	}
	t.Parallel()
	c := workertest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	setup := c.Connect(t, 0)
	js, err := jetstream.New(setup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := worker.ApplyFleet(ctx, js, sfblocks.DefaultPrefix, worker.DurableConfig{Replicas: 3}, 16); err != nil {
		t.Fatal(err)
	}
	stream := sfblocks.DefaultJobsStream

	for _, fault := range []string{"kill", "shutdown"} {
		leader := c.WaitStreamLeader(t, stream, 30*time.Second)
		c.WaitStreamCurrent(t, stream, 60*time.Second)
		// Four publishers, each connected first to another node, the
		// leader's included: its clients must move.
		var published, failed atomic.Int64
		var firstErr atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := range 4 {
			cl, err := client.New(c.Connect(t, p), client.WithTimeout(30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("%s-%d-%05d", fault, p, i)
					pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
					_, err := cl.PublishDurable(pctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: id, Object: "Task", Fields: map[string]any{"Subject": id}})
					pcancel()
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						continue
					}
					published.Add(1)
				}
			})
		}
		workertest.WaitFor(t, 20*time.Second, "publishing under way", func() bool { return published.Load() > 200 })
		before := published.Load()
		start := time.Now()
		switch fault {
		case "kill":
			leader.Kill()
		case "shutdown":
			leader.Shutdown()
		}
		next := c.WaitStreamLeader(t, stream, 30*time.Second, leader)
		elected := time.Since(start)
		workertest.WaitFor(t, 30*time.Second, "publishes stored again", func() bool { return published.Load() > before+200 })
		close(stop)
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Errorf("%s: %d publishes failed, e.g. %v", fault, n, firstErr.Load())
		}

		// Every id is in the stream exactly once.
		seen := map[string]int{}
		c.WaitStreamCurrent(t, stream, 60*time.Second)
		info, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		st := info.CachedInfo().State
		total := st.Msgs
		for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
			var m *jetstream.RawStreamMsg
			for try := 0; try < 20; try++ {
				if m, err = info.GetMsg(ctx, seq); err == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("reading message %d back: %v", seq, err)
			}
			if id := m.Header.Get(jetstream.MsgIDHeader); strings.HasPrefix(id, "insert::"+fault+"-") {
				seen[id]++
			}
		}
		doubled, lost := 0, 0
		for id, n := range seen {
			if n > 1 {
				doubled++
				t.Errorf("%s stored %d times", id, n)
			}
		}
		// Published ids are dense per publisher: a missing one is lost.
		stored := 0
		for _, n := range seen {
			stored += n
		}
		if int64(len(seen)) != published.Load() {
			lost = int(published.Load()) - len(seen)
			t.Errorf("%d jobs acknowledged, %d distinct in the stream (%d messages in all)", published.Load(), len(seen), total)
		}
		t.Logf("%s of %s (leader of %s): %s leads after %v; %d jobs published (%d during the failover), lost %d, doubled %d, failed publishes %d",
			fault, leader.Name(), stream, next.Name(), elected.Round(10*time.Millisecond), published.Load(), published.Load()-before, lost, doubled, failed.Load())

		leader.Start()
		c.WaitReady(t, 60*time.Second)
	}
}

// TestPublishDurableKnowsItsStream: once a stream stored a job published
// on a subject, a publish there that finds no responders is taken for a
// leader election: retried until the deadline without asking the JetStream
// API (which a scenario runtime under nats-roles.conf may not call), then
// failed TIMEOUT. A client that never had a job stored there asks, and
// fails at once saying no stream takes the subject.
func TestPublishDurableKnowsItsStream(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	nc, js := workertest.JetStream(t, ns)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: sfblocks.DefaultJobsStream, Subjects: []string{"sfblocks.jobs.>"}}); err != nil {
		t.Fatal(err)
	}
	var lookups atomic.Int32
	sub, err := nc.Subscribe("$JS.API.STREAM.NAMES", func(*nats.Msg) { lookups.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	job := func(id string) *sfblocks.InsertRequest {
		return &sfblocks.InsertRequest{ID: id, Object: "Task", Fields: map[string]any{"Subject": "call " + id}}
	}
	cl, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PublishDurable(ctx, sfblocks.Insert, job("first")); err != nil {
		t.Fatal(err)
	}
	// The stream goes away: no responders on its subject, as while it
	// elects a leader.
	if err := js.DeleteStream(ctx, sfblocks.DefaultJobsStream); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = cl.PublishDurable(tctx, sfblocks.Insert, job("second"))
	cancel()
	if !errors.Is(err, sfblocks.ErrTimeout) || !strings.Contains(err.Error(), "no leader") {
		t.Errorf("publish after the stream stored one = %v, want TIMEOUT naming the missing leader", err)
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("%d stream lookups by a client whose stream stored a job, want 0", n)
	}

	fresh, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel = context.WithTimeout(ctx, 20*time.Second)
	_, err = fresh.PublishDurable(tctx, sfblocks.Insert, job("third"))
	cancel()
	if !errors.Is(err, client.ErrNoStream) {
		t.Errorf("publish by a client that never had a job stored, no stream = %v, want ErrNoStream", err)
	}
	if !workertest.Eventually(5*time.Second, func() bool { return lookups.Load() > 0 }) {
		t.Error("the fresh client did not look the stream up")
	}
}
