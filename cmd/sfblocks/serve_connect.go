package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/worker"
)

// Reaching NATS at start. A worker started before its NATS servers (a
// container that comes up first, a cluster still forming) waits for them
// instead of exiting: it says so within a second, naming the URLs, and
// keeps trying, every --nats-connect-timeout if one is given and forever
// otherwise, until SIGTERM. A worker that has connected reconnects forever
// on its own (worker.Connect).

// unreachableAfter is how soon a worker that has not reached NATS says so.
const unreachableAfter = time.Second

// stillUnreachableEvery is how often it says so again while it waits.
const stillUnreachableEvery = 30 * time.Second

// errNATSUnreachable is the start's failure when --nats-connect-timeout
// passed without a connection.
var errNATSUnreachable = errors.New("NATS unreachable")

// connectNATS connects to cfg.conn's servers, waiting for them as above.
func connectNATS(ctx context.Context, cfg *serveConfig, log zerolog.Logger) (*nats.Conn, error) {
	urls := redactedURLs(cfg.conn.URLs)
	start := time.Now()
	var deadline <-chan time.Time
	if cfg.connectTimeout > 0 {
		t := time.NewTimer(cfg.connectTimeout)
		defer t.Stop()
		deadline = t.C
	}
	// The first dial may take the connect timeout per server: the log line
	// must not wait for it.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-time.After(unreachableAfter):
			until := "until stopped (--nats-connect-timeout bounds the wait)"
			if cfg.connectTimeout > 0 {
				until = fmt.Sprintf("for up to %v (--nats-connect-timeout)", cfg.connectTimeout)
			}
			log.Warn().Str("urls", urls).Msgf("NATS unreachable at %s: retrying %s", urls, until)
		case <-done:
		}
	}()
	nc, err := worker.Connect(cfg.conn)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastSaid := start
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("stopped while waiting for NATS at %s: %w", urls, ctx.Err())
		case <-deadline:
			why := "no server accepted a connection"
			if err := nc.LastError(); err != nil {
				why = err.Error()
			}
			nc.Close()
			return nil, fmt.Errorf("%w at %s for %v (--nats-connect-timeout): %s; check that nats-server runs there and that --nats-url is right",
				errNATSUnreachable, urls, cfg.connectTimeout, why)
		case <-tick.C:
			if time.Since(lastSaid) >= stillUnreachableEvery {
				lastSaid = time.Now()
				ev := log.Warn().Str("urls", urls).Dur("waited", time.Since(start).Round(time.Second))
				if err := nc.LastError(); err != nil {
					ev = ev.Err(err)
				}
				ev.Msgf("NATS still unreachable at %s: retrying", urls)
			}
		}
	}
	if waited := time.Since(start); waited >= unreachableAfter {
		log.Info().Str("url", nc.ConnectedUrlRedacted()).Dur("waited", waited.Round(100*time.Millisecond)).Msg("NATS reachable: connected")
	}
	return nc, nil
}

// waitJetStream runs open until it succeeds or fails for another reason
// than JetStream not answering yet (a cluster without a metadata leader
// answers "temporarily unavailable" or nothing), waiting as connectNATS
// does; what names what is being opened.
func waitJetStream[T any](ctx context.Context, cfg *serveConfig, log zerolog.Logger, what string, open func(ctx context.Context) (T, error)) (T, error) {
	start := time.Now()
	logged := false
	for {
		octx, cancel := context.WithTimeout(ctx, 15*time.Second)
		v, err := open(octx)
		cancel()
		if err == nil || !worker.Transient(err) || errors.Is(err, nats.ErrNoResponders) {
			return v, err
		}
		if !logged {
			log.Warn().Err(err).Msgf("JetStream not ready at %s (%s): retrying", redactedURLs(cfg.conn.URLs), what)
			logged = true
		}
		if cfg.connectTimeout > 0 && time.Since(start) > cfg.connectTimeout {
			return v, fmt.Errorf("JetStream did not answer for %v (--nats-connect-timeout) while %s: %w", cfg.connectTimeout, what, err)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func redactedURLs(urls []string) string {
	var out []string
	for _, u := range urls {
		for _, part := range strings.Split(u, ",") {
			if part = strings.TrimSpace(part); part != "" {
				if i := strings.LastIndex(part, "@"); i >= 0 {
					if j := strings.Index(part, "://"); j >= 0 && j < i {
						part = part[:j+3] + "***@" + part[i+1:]
					}
				}
				out = append(out, part)
			}
		}
	}
	return strings.Join(out, ",")
}

// tokenBucketReplicas is the replica count to open the token bucket with:
// an existing bucket's own (a worker never changes a fleet setting; 'fleet
// apply --replicas' does), else the flag's.
func tokenBucketReplicas(ctx context.Context, js jetstream.JetStream, flag int) int {
	kv, err := js.KeyValue(ctx, auth.DefaultBucket)
	if err != nil {
		return flag
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return flag
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return bs.StreamInfo().Config.Replicas
	}
	return flag
}

// failoverStore rides the token store through a JetStream leader change:
// a read, or taking the refresh lease, that fails as a failover makes
// them fail is tried again within the failover window. Saves are not
// retried here: a Save is conditional on a revision, and the cache reloads
// on a conflict. So a token expiry during an election still costs one
// token request for the fleet: no worker refreshes without the lease.
type failoverStore struct {
	auth.Store
	window time.Duration
}

func (s failoverStore) Load(ctx context.Context, account string) (*auth.Record, uint64, error) {
	var rec *auth.Record
	var rev uint64
	err := s.retry(ctx, func() (err error) {
		rec, rev, err = s.Store.Load(ctx, account)
		return err
	})
	return rec, rev, err
}

func (s failoverStore) Lease(ctx context.Context, account string) (auth.Lease, error) {
	var l auth.Lease
	err := s.retry(ctx, func() (err error) {
		l, err = s.Store.Lease(ctx, account)
		return err
	})
	return l, err
}

func (s failoverStore) retry(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(s.window)
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil || !worker.Transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
