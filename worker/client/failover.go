package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publishing through a failover. On a JetStream cluster, the jobs stream
// answers nothing while its leader changes (about 4–9 s after the node that
// led it died), and a client connected to that node reconnects to another
// meanwhile. nats.go retries a publish on "no responders" only, twice,
// 250 ms apart; a leader change also shows as a timeout or as "JetStream
// system temporarily unavailable". So [Client.PublishDurable] and
// [Client.DoDurable] retry the publish until the context's deadline (the
// client timeout without one), each try with the same Nats-Msg-Id: a try
// whose PubAck was lost but whose message was stored makes the next try a
// duplicate the stream drops (PubAck.Duplicate), so a job is neither lost
// nor doubled.

// publishTry bounds one try of a publish, so that a try sent to a node
// that just died gives way to the next.
const publishTry = 2 * time.Second

// errNoLeader wraps the last failure of a publish retried until the
// deadline: a stream takes the subject, but it answered no try.
var errNoLeader = errors.New("JetStream has no leader for the jobs stream (cluster election in progress, a majority of its nodes down, or no NATS server reachable?)")

// publishThroughFailover publishes msg with msgID, retrying failover
// failures until ctx ends. "No responders" is retried only while a stream
// takes the subject (a stream without a leader has no responders either);
// with no such stream it is returned at once. Whether a stream takes it is
// asked of the JetStream API ($JS.API.STREAM.NAMES) unless known says a
// stream has stored a publish on the subject before: a scenario runtime
// under nats-roles.conf may call no JetStream API, so once its first job
// is stored, it rides through elections without one.
func publishThroughFailover(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, msgID string, known bool) (*jetstream.PubAck, error) {
	wait := 100 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(ctx, publishTry)
		ack, err := js.PublishMsg(tctx, msg, jetstream.WithMsgID(msgID), jetstream.WithRetryAttempts(0))
		if err != nil && !known && (errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)) {
			if _, serr := js.StreamNameBySubject(tctx, msg.Subject); errors.Is(serr, jetstream.ErrStreamNotFound) {
				cancel()
				return nil, err
			}
		}
		cancel()
		if err == nil || !failover(err) {
			return ack, err
		}
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), fmt.Errorf("%w: %w", errNoLeader, err))
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), fmt.Errorf("%w: %w", errNoLeader, err))
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// failover reports whether err is what a publish fails with while the
// stream changes leaders or the connection moves to another node.
func failover(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10008, 10009, 10118: // cluster temporarily unavailable, not leader, stream offline
			return true
		case 10158: // the same message id still being stored: a retry overtook its first try
			return true
		}
		return false
	}
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}
