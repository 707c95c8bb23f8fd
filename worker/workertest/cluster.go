package workertest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// GlobalAccount is the NATS account of clients that authenticate as no one
// in particular: where the streams of [Cluster]'s tests live.
const GlobalAccount = server.DEFAULT_GLOBAL_ACCOUNT

// Cluster is an in-process JetStream cluster of embedded nats-servers, as
// an operator deploys one: each node has its own server_name, store
// directory, client port and cluster port, routes to every node (itself
// included, as in a shared configuration file) and the same cluster name.
//
// A node can die ([ClusterNode.Kill]: no goodbye, as a machine that loses
// power), be shut down as an operator does ([ClusterNode.Shutdown]: its
// Raft leaderships are handed over first), and start again on the same
// ports and store ([ClusterNode.Start], [ClusterNode.Restart]). So that a
// killed node cannot say goodbye, every route runs through a link of the
// cluster's own (one per ordered pair of nodes), which Kill cuts before
// the server goes down.
//
// Raft runs with the server's production timings: after a leader dies, a
// stream or bucket has no leader for about 4–9 s (tests outside the server
// package cannot shorten it). Use [Cluster.WaitStreamLeader] rather than a
// sleep to wait for the election.
type Cluster struct {
	tb    testing.TB
	name  string
	nodes []*ClusterNode
	// links[i][j] carries node i's route to node j.
	links [][]*link
	// sink is what every node advertises as its cluster address, so that a
	// route learnt by gossip (which would bypass the links) goes nowhere;
	// the configured routes through the links are the cluster's mesh.
	sink *link
}

// ClusterNode is one server of a [Cluster].
type ClusterNode struct {
	c     *Cluster
	index int
	opts  server.Options
	mu    sync.Mutex
	ns    *server.Server // nil while stopped
	// cluster is the node's cluster (route) address.
	cluster string
	// log keeps what the node logged at notice level and above, across
	// restarts.
	log *serverLog
}

// StartCluster starts an n-node JetStream cluster (n ≥ 2; 3 is what
// production runs) on loopback ports the servers and links pick
// themselves, waits until it has a metadata leader and every node is
// current, and shuts it down when the test ends. Nodes are named
// "n1".."nN"; the cluster is named after the test. No port is picked by
// listening, closing and reusing it: the links are bound first, and a link
// refuses connections until the node it leads to is up.
func StartCluster(tb testing.TB, n int, opts ...NATSOption) *Cluster {
	tb.Helper()
	if n < 2 {
		tb.Fatalf("workertest: StartCluster(%d): a cluster has at least 2 nodes (use StartNATS for one)", n)
	}
	c := &Cluster{tb: tb, name: clusterName(tb.Name()), sink: newLink(tb)}
	c.links = make([][]*link, n)
	for i := range n {
		c.links[i] = make([]*link, n)
		for j := range n {
			c.links[i][j] = newLink(tb)
		}
	}
	// The store directories first: the servers must be down before the
	// directories go, and cleanups run last registered first.
	nodeOpts := make([]*server.Options, n)
	for i := range n {
		nodeOpts[i] = NATSOptions(tb)
	}
	tb.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.Kill()
		}
		for _, row := range c.links {
			for _, l := range row {
				l.close()
			}
		}
		c.sink.close()
	})
	for i := range n {
		o := nodeOpts[i]
		for _, opt := range opts {
			opt(o)
		}
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.Cluster.Name = c.name
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = server.RANDOM_PORT
		o.Cluster.Advertise = c.sink.addr()
		routes := make([]string, n)
		for j := range n {
			routes[j] = "nats://" + c.links[i][j].addr()
		}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		nd := &ClusterNode{c: c, index: i, opts: *o, log: &serverLog{}}
		c.nodes = append(c.nodes, nd)
		nd.start()
		// Later starts reuse the ports this one picked.
		nd.mu.Lock()
		nd.opts.Port = nd.ns.Addr().(*net.TCPAddr).Port
		nd.opts.Cluster.Port = nd.ns.ClusterAddr().Port
		nd.mu.Unlock()
	}
	c.WaitReady(tb, 60*time.Second)
	return c
}

// link is a TCP relay carrying one node's route to another. It refuses
// connections (closes them at once) while it has no target.
type link struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	conns  map[net.Conn]struct{}
}

func newLink(tb testing.TB) *link {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("workertest: cluster link: %v", err)
	}
	l := &link{ln: ln, conns: map[net.Conn]struct{}{}}
	go l.accept()
	return l
}

func (l *link) addr() string { return l.ln.Addr().String() }

func (l *link) accept() {
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.relay(in)
	}
}

func (l *link) relay(in net.Conn) {
	l.mu.Lock()
	target := l.target
	l.mu.Unlock()
	if target == "" {
		_ = in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		_ = in.Close()
		return
	}
	l.mu.Lock()
	if l.target != target { // cut while dialling
		l.mu.Unlock()
		_ = in.Close()
		_ = out.Close()
		return
	}
	l.conns[in], l.conns[out] = struct{}{}, struct{}{}
	l.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	_ = in.Close()
	_ = out.Close()
	<-done
	l.mu.Lock()
	delete(l.conns, in)
	delete(l.conns, out)
	l.mu.Unlock()
}

// connect makes the link lead to target from now on.
func (l *link) connect(target string) {
	l.mu.Lock()
	l.target = target
	l.mu.Unlock()
}

// cut drops every connection at once and refuses new ones.
func (l *link) cut() {
	l.mu.Lock()
	l.target = ""
	for conn := range l.conns {
		_ = conn.Close()
	}
	l.mu.Unlock()
}

func (l *link) close() {
	l.cut()
	_ = l.ln.Close()
}

// clusterName makes a cluster name of a test name (no spaces or dots).
func clusterName(test string) string {
	r := strings.NewReplacer("/", "_", " ", "_", ".", "_", "#", "_")
	name := r.Replace(test)
	if len(name) > 40 {
		name = name[:40]
	}
	return "c_" + name
}

// start starts the node's server: its own routes lead to the nodes that
// are up, and theirs to it once it listens.
func (nd *ClusterNode) start() {
	nd.c.tb.Helper()
	for j, peer := range nd.c.nodes {
		if j != nd.index && peer.Server() != nil {
			nd.c.links[nd.index][j].connect(peer.clusterAddr())
		}
	}
	o := nd.opts
	ns, err := server.NewServer(&o)
	if err != nil {
		nd.c.tb.Fatalf("workertest: cluster node %s: %v", o.ServerName, err)
	}
	ns.SetLoggerV2(nd.log, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		ns.Shutdown()
		nd.c.tb.Fatalf("workertest: cluster node %s did not become ready within 20s", o.ServerName)
	}
	nd.mu.Lock()
	nd.ns, nd.cluster = ns, ns.ClusterAddr().String()
	nd.mu.Unlock()
	for i := range nd.c.links {
		nd.c.links[i][nd.index].connect(nd.cluster)
	}
}

func (nd *ClusterNode) clusterAddr() string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cluster
}

// Nodes returns the cluster's nodes, n1 first.
func (c *Cluster) Nodes() []*ClusterNode { return c.nodes }

// Node returns the node at index i (0 is n1).
func (c *Cluster) Node(i int) *ClusterNode { return c.nodes[i] }

// Name is the cluster's name (cluster.name in a server's configuration).
func (c *Cluster) Name() string { return c.name }

// URLs returns every node's client URL, n1 first; they do not change when
// a node restarts.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.URL()
	}
	return out
}

// URLsFrom returns every node's client URL starting with node i's, then
// the others in order: give worker k URLsFrom(k % n), comma-joined, and
// the workers start spread over the nodes while each can fail over to
// every other.
func (c *Cluster) URLsFrom(i int) []string {
	urls := c.URLs()
	i %= len(urls)
	return append(urls[i:], urls[:i]...)
}

// Connect opens a connection to the cluster (every node's URL, first i's:
// see URLsFrom) that reconnects forever, 100 ms apart, and is closed when
// the test ends.
func (c *Cluster) Connect(tb testing.TB, i int, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	// nats.Timeout: as Connect, for a loaded machine.
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.DontRandomize(), nats.Timeout(15 * time.Second)}, opts...)
	nc, err := nats.Connect(strings.Join(c.URLsFrom(i), ","), opts...)
	if err != nil {
		tb.Fatalf("workertest: connecting to cluster %s: %v", c.name, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Violations returns the permissions violations every node logged so far
// (see [ConfigNATS.Violations]), each line prefixed with the node's name.
func (c *Cluster) Violations() []string {
	var out []string
	for _, nd := range c.nodes {
		for _, l := range violations(nd.log.lines()) {
			out = append(out, nd.Name()+": "+l)
		}
	}
	return out
}

// Running returns the nodes that are up.
func (c *Cluster) Running() []*ClusterNode {
	var out []*ClusterNode
	for _, nd := range c.nodes {
		if nd.Server() != nil {
			out = append(out, nd)
		}
	}
	return out
}

// MetaLeader returns the node that leads the JetStream metadata group, nil
// when none does (an election is in progress, or too few nodes are up).
func (c *Cluster) MetaLeader() *ClusterNode {
	for _, nd := range c.Running() {
		if ns := nd.Server(); ns != nil && ns.JetStreamIsLeader() {
			return nd
		}
	}
	return nil
}

// StreamLeader returns the node that leads stream (of the global account;
// a KV bucket's stream is "KV_<bucket>"), nil when no running node does.
func (c *Cluster) StreamLeader(stream string) *ClusterNode {
	for _, nd := range c.Running() {
		if ns := nd.Server(); ns != nil && ns.JetStreamIsStreamLeader(GlobalAccount, stream) {
			return nd
		}
	}
	return nil
}

// ConsumerLeader returns the node that leads consumer of stream, nil when
// no running node does.
func (c *Cluster) ConsumerLeader(stream, consumer string) *ClusterNode {
	for _, nd := range c.Running() {
		if ns := nd.Server(); ns != nil && ns.JetStreamIsConsumerLeader(GlobalAccount, stream, consumer) {
			return nd
		}
	}
	return nil
}

// WaitStreamLeader waits until a running node other than those in not
// leads stream, and returns it; it fails the test after timeout.
func (c *Cluster) WaitStreamLeader(tb testing.TB, stream string, timeout time.Duration, not ...*ClusterNode) *ClusterNode {
	tb.Helper()
	var leader *ClusterNode
	WaitFor(tb, timeout, "a leader of stream "+stream+" in cluster "+c.name, func() bool {
		leader = c.StreamLeader(stream)
		for _, x := range not {
			if leader == x {
				return false
			}
		}
		return leader != nil
	})
	return leader
}

// WaitReady waits until the cluster has a metadata leader and every
// running node is current with it (JetStream answers on every node).
func (c *Cluster) WaitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	WaitFor(tb, timeout, "cluster "+c.name+" with a JetStream metadata leader and every running node current", func() bool {
		if c.MetaLeader() == nil {
			return false
		}
		for _, nd := range c.Running() {
			if ns := nd.Server(); ns == nil || !ns.JetStreamIsCurrent() {
				return false
			}
		}
		return true
	})
}

// WaitStreamCurrent waits until every running node holds stream's
// replica up to date with its leader (a node started again has caught up).
func (c *Cluster) WaitStreamCurrent(tb testing.TB, stream string, timeout time.Duration) {
	tb.Helper()
	WaitFor(tb, timeout, "every running node current on stream "+stream, func() bool {
		if c.StreamLeader(stream) == nil {
			return false
		}
		for _, nd := range c.Running() {
			if ns := nd.Server(); ns == nil || !ns.JetStreamIsStreamCurrent(GlobalAccount, stream) {
				return false
			}
		}
		return true
	})
}

// WaitHealthy waits until every running node's health check passes, as
// nats-server's /healthz reports it: JetStream current, and every stream
// and consumer replica the node holds caught up. A cluster that lost a
// node must be healthy again before it can lose another one: a node that
// is back but still catching up cannot stand in for a leader yet. It fails
// the test after timeout, naming what was still behind.
func (c *Cluster) WaitHealthy(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	var last string
	if !Eventually(timeout, func() bool {
		for _, nd := range c.Running() {
			ns := nd.Server()
			if ns == nil {
				return false
			}
			if h := ns.Healthz(&server.HealthzOptions{}); h.Status != "ok" {
				last = nd.Name() + ": " + h.Error
				return false
			}
		}
		return true
	}) {
		tb.Fatalf("workertest: cluster %s not healthy within %v: %s", c.name, timeout, last)
	}
}

// StreamReplicas reads stream's replica count and the names of its leader
// and of its peers as a client sees them (StreamInfo's cluster section),
// through nc.
func StreamReplicas(ctx context.Context, nc *nats.Conn, stream string) (replicas int, leader string, peers []string, err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, "", nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, "", nil, err
	}
	info := s.CachedInfo()
	if info.Cluster != nil {
		leader = info.Cluster.Leader
		for _, p := range info.Cluster.Replicas {
			peers = append(peers, p.Name)
		}
	}
	return info.Config.Replicas, leader, peers, nil
}

// Name is the node's server_name ("n1", "n2"...).
func (nd *ClusterNode) Name() string { return nd.opts.ServerName }

// Index is the node's place in [Cluster.Nodes].
func (nd *ClusterNode) Index() int { return nd.index }

// Server returns the running server, nil while the node is stopped.
func (nd *ClusterNode) Server() *server.Server {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.ns
}

// URL is the node's client URL; it does not change across restarts.
func (nd *ClusterNode) URL() string {
	return (&url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", nd.opts.Port)}).String()
}

// StoreDir is the node's JetStream store directory, kept across restarts.
func (nd *ClusterNode) StoreDir() string { return nd.opts.StoreDir }

// Kill takes the node down as a machine that dies: its routes are cut
// first, so it hands none of its Raft leaderships over, and the streams it
// led elect a new leader after the Raft election timeout (4–9 s). Its
// clients see their connection drop at once, as when a process dies.
// Killing a stopped node does nothing.
func (nd *ClusterNode) Kill() {
	if nd.Server() == nil {
		return
	}
	for j := range nd.c.links {
		nd.c.links[nd.index][j].cut()
		nd.c.links[j][nd.index].cut()
	}
	nd.down()
}

// Shutdown takes the node down as an operator stopping nats-server does:
// it steps down from every Raft group it leads first, so another node
// takes over within milliseconds. Shutting a stopped node down does
// nothing.
func (nd *ClusterNode) Shutdown() {
	if nd.Server() == nil {
		return
	}
	nd.down()
	for j := range nd.c.links {
		nd.c.links[nd.index][j].cut()
		nd.c.links[j][nd.index].cut()
	}
}

func (nd *ClusterNode) down() {
	nd.mu.Lock()
	ns := nd.ns
	nd.ns = nil
	nd.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Start starts a stopped node again on its ports and store, routing to
// every other node; it waits until the node accepts clients, not until it
// caught up (see [Cluster.WaitStreamCurrent]). Starting a running node
// does nothing.
func (nd *ClusterNode) Start() {
	nd.c.tb.Helper()
	if nd.Server() != nil {
		return
	}
	nd.start()
}

// Restart shuts the node down as an operator does ([ClusterNode.Shutdown])
// and starts it again at once.
func (nd *ClusterNode) Restart() {
	nd.c.tb.Helper()
	nd.Shutdown()
	nd.start()
}
