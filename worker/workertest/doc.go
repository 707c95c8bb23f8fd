// Package workertest gives sfblocks' tests the real parts they run
// against, as rivertest does for River: an embedded nats-server with
// JetStream in its own temporary directory, the Salesforce simulator on a
// port it picked itself, a bounded wait for a condition, and a log buffer
// that goroutines may write while the test reads it.
//
// Every helper takes a testing.TB, calls tb.Helper() and registers its
// own cleanup, so a test that owns its servers can call t.Parallel():
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		ns := workertest.StartNATS(t)
//		nc := workertest.Connect(t, ns)
//		sim := workertest.StartSim(t, sfsim.Options{})
//		...
//		workertest.WaitFor(t, 10*time.Second, "the job's reply", func() bool { return got.Load() })
//	}
//
// [StartCluster] starts a JetStream cluster of embedded servers (three
// nodes, as production runs), whose nodes a test can kill, shut down and
// start again, and tells which node leads a stream.
//
// Ports are always taken by binding port 0 and reading the address back,
// never by listening, closing and reusing a port another process may take
// in between.
package workertest
