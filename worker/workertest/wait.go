package workertest

import (
	"testing"
	"time"
)

// Polling starts at firstPoll between looks and grows to at most maxPoll,
// so that a condition that holds soon is seen soon and an expensive one
// (a CLI run, an HTTP scrape) is not run back to back for seconds.
const (
	firstPoll = time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// WaitFor polls cond until it holds, and fails the test naming what it
// waited for when timeout passes first. Use it only for state that offers
// nothing to wait on (a counter, a KV entry, a process's output); await a
// channel or a reply when there is one.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Eventually(timeout, cond) {
		tb.Fatalf("workertest: %s: not reached within %v", what, timeout)
	}
}

// Eventually polls cond until it holds or timeout passes, and reports
// whether it held. It is [WaitFor] for a test that fails in its own words
// (with the state it last saw) or goes on after a miss. cond runs on the
// caller's goroutine, so it may call t.Fatal.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := firstPoll
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, maxPoll)
	}
	return true
}
