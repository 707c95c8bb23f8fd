package workertest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSOption changes the options of the server [StartNATS] starts (for
// example authorization, TLS or a fixed store directory).
type NATSOption func(*server.Options)

// NATSOptions returns the options [StartNATS] starts from: loopback, a port
// the server picks, JetStream stored in a fresh temporary directory, no
// logging and no signal handlers.
func NATSOptions(tb testing.TB) *server.Options {
	tb.Helper()
	return &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
}

// WithoutJetStream turns JetStream off, for a test of what needs it or of
// plain connections only.
func WithoutJetStream(o *server.Options) { o.JetStream = false }

// StartNATS starts an embedded nats-server with JetStream for the test and
// shuts it down when the test ends.
func StartNATS(tb testing.TB, opts ...NATSOption) *server.Server {
	tb.Helper()
	o := NATSOptions(tb)
	for _, opt := range opts {
		opt(o)
	}
	return startServer(tb, o)
}

func startServer(tb testing.TB, o *server.Options) *server.Server {
	tb.Helper()
	ns, err := server.NewServer(o)
	if err != nil {
		tb.Fatalf("workertest: nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		tb.Fatal("workertest: nats-server did not become ready within 20s")
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Connect opens a connection to ns, closed when the test ends. Each call
// makes a separate connection, as another process would.
func Connect(tb testing.TB, ns *server.Server, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	// A loaded test machine can take longer than nats.go's 2 s default to
	// finish the handshake; a test that means a shorter one passes its own.
	opts = append([]nats.Option{nats.Timeout(15 * time.Second)}, opts...)
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		tb.Fatalf("workertest: connecting to %s: %v", ns.ClientURL(), err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream opens a connection to ns (see [Connect]) and its JetStream
// handle.
func JetStream(tb testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc := Connect(tb, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("workertest: JetStream: %v", err)
	}
	return nc, js
}

// RestartableNATS is an embedded server that a test can stop and start
// again on the same port and store directory, as an operator restarting
// nats-server would.
type RestartableNATS struct {
	tb   testing.TB
	opts server.Options
	mu   sync.Mutex
	ns   *server.Server
}

// StartRestartableNATS starts a [RestartableNATS]; it is shut down when the
// test ends.
func StartRestartableNATS(tb testing.TB, opts ...NATSOption) *RestartableNATS {
	tb.Helper()
	o := NATSOptions(tb)
	for _, opt := range opts {
		opt(o)
	}
	r := &RestartableNATS{tb: tb, opts: *o}
	r.start()
	// Later starts reuse the port the first one picked.
	r.opts.Port = r.ns.Addr().(*net.TCPAddr).Port
	tb.Cleanup(r.Stop)
	return r
}

func (r *RestartableNATS) start() {
	r.tb.Helper()
	o := r.opts
	ns, err := server.NewServer(&o)
	if err != nil {
		r.tb.Fatalf("workertest: nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		r.tb.Fatal("workertest: nats-server did not become ready within 20s")
	}
	r.mu.Lock()
	r.ns = ns
	r.mu.Unlock()
}

// Server returns the running server.
func (r *RestartableNATS) Server() *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ns
}

// URL is the server's client URL; it does not change across restarts.
func (r *RestartableNATS) URL() string { return r.Server().ClientURL() }

// Stop shuts the server down and waits until it is down.
func (r *RestartableNATS) Stop() {
	ns := r.Server()
	ns.Shutdown()
	ns.WaitForShutdown()
}

// Restart stops the server and starts it again on the same port and store.
func (r *RestartableNATS) Restart() {
	r.tb.Helper()
	r.Stop()
	r.start()
}
