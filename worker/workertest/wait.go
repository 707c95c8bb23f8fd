package workertest

import (
	"testing"
	"time"
)

// pollInterval is how often [WaitFor] looks again.
const pollInterval = 5 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test naming what it
// waited for when timeout passes first. Use it only for state that offers
// nothing to wait on (a counter, a KV entry, a process's output); await a
// channel or a reply when there is one.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("workertest: %s: not reached within %v", what, timeout)
		}
		time.Sleep(pollInterval)
	}
}
