package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Riding through a JetStream failover. On a cluster, every stream and
// bucket (a bucket is a stream) has a Raft leader; when the node that leads
// one dies, the stream answers nothing until the others elect a new leader,
// about 4–9 s with production timings, and a worker connected to that node
// reconnects to another meanwhile. nats.go retries a publish on "no
// responders" only, twice, 250 ms apart; a leader change also surfaces as
// a timeout, as "JetStream system temporarily unavailable", or as the
// new leader not knowing a subject's last sequence yet. So every
// operation of the worker on JetStream that must not be lost (the ledger's
// reads and writes, claims, dead letters, parks, acks, status) is retried
// within a bounded window, [DefaultFailoverWindow], in a way that cannot
// duplicate: publishes carry a message id the stream deduplicates, KV
// writes are conditional on a revision (or a Create, whose retry finds its
// own value), deletes are revision-checked, reads and puts are idempotent.
// Past the window the error names the cluster state.

// DefaultFailoverWindow is how long one JetStream operation is retried
// across a leader change: longer than an election (4–9 s) plus a reconnect
// to another node, short enough that a cluster that lost its majority is
// reported within half a minute.
const DefaultFailoverWindow = 20 * time.Second

// ErrNoJetStreamLeader is wrapped by the errors of JetStream operations that
// were retried for the whole failover window: the stream has no leader (an
// election in progress, or a majority of its replicas down), or the worker
// cannot reach any node.
var ErrNoJetStreamLeader = errors.New("JetStream has no leader")

// transientCodes are the JetStream API error codes a leader change
// produces: cluster temporarily unavailable (no metadata leader), not the
// leader, stream or consumer offline while it recovers, and a new leader
// not knowing a subject's last sequence yet (a KV Create or Update on an
// R3 bucket right after an election), and a publish retried while its
// first try, with the same message id, is still being replicated.
var transientCodes = map[jetstream.ErrorCode]bool{
	10008: true, // JSClusterNotAvailErr
	10009: true, // JSClusterNotLeaderErr
	10118: true, // JSStreamOfflineErr
	10119: true, // JSConsumerOfflineErr
	10163: true, // JSStreamExpectedLastSeqPerSubjectNotReady
	10158: true, // JSStreamDuplicateMessageConflict: the same message id still being stored (a retry overtook its first try)
	10194: true, // JSStreamOfflineReasonErrF
	10195: true, // JSConsumerOfflineReasonErrF
}

// transient reports whether err is what a JetStream operation fails with
// while a stream changes leaders or the connection moves to another node:
// no responders, a timeout, a reconnecting connection, or one of
// transientCodes. It is false for a closed connection, a context the
// caller cancelled, and every answer that is the operation's real outcome
// (key exists, wrong revision, not found).
func transient(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return transientCodes[apiErr.ErrorCode]
	}
	switch {
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrNoHeartbeat):
		return true
	}
	return false
}

// retryJS runs op, each try bounded by try, until it succeeds, fails with
// an error that is not transient, or window passes; it pauses 100 ms
// doubling to 1 s between tries. The context given to op is detached from
// ctx's cancellation (bookkeeping must outlive a drain) but not from its
// values. Past the window it returns the last error wrapped by
// [ErrNoJetStreamLeader], naming what and stream.
func retryJS(ctx context.Context, window, try time.Duration, what, stream string, op func(ctx context.Context) error) error {
	window = max(window, try)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), window)
	defer cancel()
	pauseFor := 100 * time.Millisecond
	for {
		octx, ocancel := context.WithTimeout(wctx, try)
		err := op(octx)
		ocancel()
		if err == nil || !transient(err) {
			return err
		}
		if wctx.Err() != nil {
			return noLeader(what, stream, window, err)
		}
		pause(wctx, pauseFor)
		pauseFor = min(2*pauseFor, time.Second)
		if wctx.Err() != nil {
			return noLeader(what, stream, window, err)
		}
	}
}

// noLeader is the error of an operation on stream that found no leader for
// the whole window.
func noLeader(what, stream string, window time.Duration, err error) error {
	return fmt.Errorf("%s: %w for stream %s after %v (cluster election in progress, a majority of its replicas down, or no NATS server reachable?): %w",
		what, ErrNoJetStreamLeader, stream, window.Round(time.Second), err)
}

// kvStream is the stream behind a KV bucket, as errors name it.
func kvStream(kv jetstream.KeyValue) string { return "KV_" + kv.Bucket() }

// ackTimeout bounds one try of an ack: the ledger's operation timeout, or
// 5s before the set-up.
func (d *durable) ackTimeout() time.Duration {
	if d.ledger != nil {
		return d.ledger.timeout
	}
	return 5 * time.Second
}

// Transient reports whether err is what a JetStream operation fails with
// while a cluster changes leaders or the connection moves to another node
// (no responders, a timeout, "temporarily unavailable"...): worth retrying
// the same operation, with the same message id or revision. Callers
// outside the worker (the token store, the commands) use it to ride
// through a failover as the worker does.
func Transient(err error) bool { return transient(err) }
