package worker

import (
	"fmt"
	"sync"

	"github.com/sfblocks/sfblocks"
)

// accountShares caps the in-flight slots one account may hold, so that a
// slow org (calls that take seconds) cannot take every slot of the worker
// from the other accounts: its jobs past the share are refused fast on the
// synchronous path and parked on the durable one, while other accounts'
// jobs run. A share of 0 means no cap.
type accountShares struct {
	share   int
	mu      sync.Mutex
	running map[string]int
}

// acquire takes one of account's slots; false when it holds its share.
func (s *accountShares) acquire(account string) bool {
	if s.share <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[account] >= s.share {
		return false
	}
	if s.running == nil {
		s.running = map[string]int{}
	}
	s.running[account]++
	return true
}

// release gives one of account's slots back.
func (s *accountShares) release(account string) {
	if s.share <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[account]--; s.running[account] <= 0 {
		delete(s.running, account)
	}
}

// full reports whether account holds its share now.
func (s *accountShares) full(account string) bool {
	if s.share <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[account] >= s.share
}

// saturated answers a synchronous job of an account that holds its share.
func saturated(account string, share int) *sfblocks.Error {
	return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true,
		Message: fmt.Sprintf("account %q already has %d jobs running on this worker, its share; the job was not started: retry it (the account's org is slow, or add workers)", account, share)}
}

// WithAccountShare sets the most in-flight slots one account's jobs may
// hold on this worker, so that one slow or busy org never takes them all:
// a synchronous job past its account's share is answered at once, not
// started, with a retryable SALESFORCE_UNAVAILABLE; a durable one is
// parked until the account has room. Defaults to 0, no cap (a worker
// serving one account); at most the max in flight.
func WithAccountShare(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return invalid("account share %d: must be 0 (no cap) or positive", n)
		}
		c.accountShare = n
		return nil
	}
}
