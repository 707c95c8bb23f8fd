package workertest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestClusterReplicatesAndFailsOver is the helper's promise: three nodes
// form one JetStream cluster, an R3 stream is placed on all of them, the
// node that leads it can be found and stopped, another one takes over with
// every message, and a node started again catches up.
func TestClusterReplicatesAndFailsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Raft elections with production timings (4–9 s each)")
	}
	t.Parallel()
	c := workertest.StartCluster(t, 3)
	if got := len(c.Running()); got != 3 {
		t.Fatalf("%d nodes running, want 3", got)
	}
	for i, nd := range c.Nodes() {
		if nd.Name() != fmt.Sprintf("n%d", i+1) || nd.Index() != i || nd.StoreDir() == "" {
			t.Errorf("node %d: name %q index %d store %q", i, nd.Name(), nd.Index(), nd.StoreDir())
		}
		if !nd.Server().JetStreamIsClustered() {
			t.Errorf("node %s is not in clustered JetStream mode", nd.Name())
		}
	}
	if got := c.URLsFrom(1); got[0] != c.Node(1).URL() || len(got) != 3 || !slices.Contains(got, c.Node(0).URL()) {
		t.Errorf("URLsFrom(1) = %v", got)
	}

	nc := c.Connect(t, 0)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, "r3.x", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.WaitStreamLeader(t, "R3", 20*time.Second)
	replicas, name, peers, err := workertest.StreamReplicas(ctx, nc, "R3")
	if err != nil || replicas != 3 || name != leader.Name() || len(peers) != 2 {
		t.Fatalf("stream R3: replicas %d leader %q peers %v err %v; the helper says %s leads", replicas, name, peers, err, leader.Name())
	}

	stopped := time.Now()
	leader.Kill()
	if leader.Server() != nil || len(c.Running()) != 2 {
		t.Fatal("the stopped node still runs")
	}
	next := c.WaitStreamLeader(t, "R3", 30*time.Second, leader)
	elected := time.Since(stopped)
	if elected < time.Second {
		t.Errorf("a new leader %v after the leader died: it handed its leadership over, as a graceful shutdown does", elected)
	}
	// Two of three nodes are a quorum: the stream takes writes again.
	if _, err := js.Publish(ctx, "r3.x", []byte("after")); err != nil {
		t.Fatalf("publish with %s stopped and %s leading: %v", leader.Name(), next.Name(), err)
	}
	s, err := js.Stream(ctx, "R3")
	if err != nil || s.CachedInfo().State.Msgs != 11 {
		t.Fatalf("stream R3 after the failover: %v, err %v; want 11 messages", s, err)
	}

	leader.Start()
	c.WaitStreamCurrent(t, "R3", 30*time.Second)
	if !leader.Server().JetStreamIsStreamCurrent(workertest.GlobalAccount, "R3") {
		t.Errorf("%s did not catch up", leader.Name())
	}
	// A graceful restart hands the leadership over at once.
	if c.StreamLeader("R3") != next {
		next = c.StreamLeader("R3")
	}
	restarted := time.Now()
	next.Restart()
	handedOver := c.WaitStreamLeader(t, "R3", 30*time.Second)
	handover := time.Since(restarted)
	c.WaitReady(t, 30*time.Second)
	c.WaitStreamCurrent(t, "R3", 30*time.Second)
	c.WaitHealthy(t, 30*time.Second)
	if c.MetaLeader() == nil || c.ConsumerLeader("R3", "none") != nil {
		t.Error("MetaLeader or ConsumerLeader answers wrong")
	}
	t.Logf("leader %s killed: %s elected after %v; %s restarted gracefully: %s leads %v after the restart began; all current",
		leader.Name(), next.Name(), elected.Round(10*time.Millisecond), next.Name(), handedOver.Name(), handover.Round(10*time.Millisecond))
}
