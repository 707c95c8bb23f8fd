package workertest

import (
	"net"
	"testing"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// StartSim starts the Salesforce simulator on a loopback port it picks
// itself and closes it when the test ends. Its URLs are sim.LoginURL() and
// sim.MyDomainURL().
func StartSim(tb testing.TB, opts sfsim.Options) *sfsim.Server {
	tb.Helper()
	sim, err := sfsim.Start("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("workertest: starting the simulator: %v", err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	return sim
}

// Listen binds a loopback TCP port for the test and returns the listener,
// closed when the test ends. Hand the listener itself to the server under
// test; use its address only where nothing else can take the port first.
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("workertest: listen: %v", err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	return ln
}
