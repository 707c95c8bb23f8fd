package worker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// Accounts do not share fate. The fleet pulls each block's durable jobs
// through one consumer, whatever their account; a job that cannot run now
// because its account cannot (its circuit breaker is open, it already holds
// its share of the worker) would, if handed back with a delay, stay
// ack-pending on that consumer, and a few thousand of them fill its
// MaxAckPending: every other account's jobs then wait too. So such a job
// is parked instead: published, unchanged, to its account's own subject on
// the parked stream ("<prefix>.parked.<block>.<account>", work queue), and
// acked on the main consumer, which flows on. Each account with parked
// jobs has its own consumer ("parked-<account>"), which the workers pull
// only while the account can run: its parked jobs wait there, ack-pending
// on its own consumer, and no other account's.
//
// Parking keeps the job's identity (its id goes along in Sfblocks-Job-Id),
// so claims, kept results and reconciliation are unchanged, and its
// Nats-Msg-Id is derived from the original message's stream sequence, so a
// worker that dies between the park and the ack parks it once.

// DefaultParkedStream is the work-queue stream of parked jobs.
const DefaultParkedStream = "SFBLOCKS_PARKED"

// parkedConsumerPrefix names the consumers of the parked stream:
// "parked-<account token>".
const parkedConsumerPrefix = "parked-"

// concurrencyBackoff is how long an account's durable jobs stand aside
// after Salesforce refused one for the org's concurrent-request limit.
const concurrencyBackoff = 3 * time.Second

// parkScanInterval is how often a worker looks for accounts with parked
// jobs that it does not pull yet (another worker parked them).
const parkScanInterval = 2 * time.Second

// parkedSubject is where a job of block and account is parked.
func (d *durable) parkedSubject(block sfblocks.Block, account string) string {
	return d.w.cfg.prefix + ".parked." + string(block) + "." + accountToken(account)
}

// accountToken writes an account name as one subject token and consumer
// name part: configured names ([A-Za-z0-9_-]) as they are, anything else
// in base64url after a "~".
func accountToken(account string) string {
	if account != "" && strings.Trim(account, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return account
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(account))
}

// tokenAccount reads accountToken back.
func tokenAccount(token string) string {
	if rest, ok := strings.CutPrefix(token, "~"); ok {
		if b, err := base64.RawURLEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
	}
	return token
}

// parkedStreamConfig is the parked stream: like the jobs stream.
func (f *fleet) parkedStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        f.cfg.ParkedStream,
		Description: "sfblocks durable jobs waiting for their account (open circuit breaker, account saturated), one subject per account",
		Subjects:    []string{f.prefix + ".parked.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  f.cfg.DuplicateWindow,
		Replicas:    f.cfg.Replicas,
	}
}

// parkedConsumerConfig is the consumer of one account's parked jobs.
func (f *fleet) parkedConsumerConfig(token string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       parkedConsumerPrefix + token,
		Description:   "sfblocks workers pulling the parked jobs of account " + tokenAccount(token),
		FilterSubject: f.prefix + ".parked.*." + token,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       f.cfg.AckWait,
		MaxDeliver:    f.cfg.MaxDeliver,
		MaxAckPending: f.cfg.MaxAckPending,
	}
}

// availability is what the worker knows of whether each account can run
// now: until when its breaker said calls fail fast.
type availability struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// blockedUntil reports when account can run again, zero when it can now.
func (a *availability) blockedUntil(account string, now time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if u := a.until[account]; u.After(now) {
		return u
	}
	return time.Time{}
}

// block records that account cannot run before until.
func (a *availability) block(account string, until time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.until == nil {
		a.until = map[string]time.Time{}
	}
	if until.After(a.until[account]) {
		a.until[account] = until
	}
}

// park moves a job of the main consumer that cannot run now to its
// account's parked subject and acks it there. It reports false when the
// job could not be parked (the parked stream is missing, NATS is down):
// the caller hands it back instead.
func (d *durable) park(j *durableJob, why string) bool {
	w := d.w
	traceNote(j.span, attribute.String(natstrace.AttrParked, why))
	meta, err := j.msg.Metadata()
	if err != nil {
		return false
	}
	token := accountToken(j.task.account)
	msg := &nats.Msg{Subject: d.parkedSubject(j.block, j.task.account), Data: j.msg.Data(), Header: nats.Header{}}
	for k, v := range j.msg.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			msg.Header[k] = v
		}
	}
	msg.Header.Set(sfblocks.HeaderJobID, j.id())
	// The stored time as well as the sequence: a stream created again
	// numbers from 1 again, within the parked stream's duplicate window.
	id := fmt.Sprintf("park:%s:%d:%d", meta.Stream, meta.Sequence.Stream, meta.Timestamp.UnixNano())
	err = retryJS(w.base, d.cfg.FailoverWindow, d.ledger.timeout, "parking the job", d.cfg.ParkedStream, func(ctx context.Context) error {
		_, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(d.cfg.ParkedStream), jetstream.WithRetryAttempts(0))
		return err
	})
	if err != nil {
		w.log.Warn().Err(err).Str("job_id", j.id()).Str("account", j.task.account).
			Msg("could not park a durable job; handing it back (run 'sfblocks fleet apply' if the parked stream is missing)")
		return false
	}
	if err := d.startParked(token); err != nil {
		w.log.Warn().Err(err).Str("account", j.task.account).Msg("could not start pulling the account's parked jobs; another worker will")
	}
	w.m.Parked.WithLabelValues(string(j.block), why).Inc()
	w.log.Debug().Str("job_id", j.id()).Str("block", string(j.block)).Str("account", j.task.account).Str("why", why).
		Msg("durable job parked until its account can run")
	d.settleMsg(j.block, j.msg, settlement{action: actionAck}, "")
	return true
}

// startParked makes sure the consumer of token's parked jobs exists and
// that this worker pulls it.
func (d *durable) startParked(token string) error {
	d.mu.Lock()
	if d.parkedLoops[token] || d.stopped() {
		d.mu.Unlock()
		return nil
	}
	d.parkedLoops[token] = true
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.SetupTimeout)
	defer cancel()
	f := &fleet{js: d.js, cfg: d.cfg, prefix: d.w.cfg.prefix}
	want := f.parkedConsumerConfig(token)
	c, err := d.js.Consumer(ctx, d.cfg.ParkedStream, want.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = d.js.CreateConsumer(ctx, d.cfg.ParkedStream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			c, err = d.js.Consumer(ctx, d.cfg.ParkedStream, want.Durable)
		}
	}
	if err != nil {
		d.mu.Lock()
		delete(d.parkedLoops, token)
		d.mu.Unlock()
		return err
	}
	d.w.wg.Add(1)
	go d.parkedLoop(tokenAccount(token), c)
	return nil
}

// scanParked starts pulling every account's parked consumer, now and every
// parkScanInterval until Stop.
func (d *durable) scanParked() {
	defer d.w.wg.Done()
	t := time.NewTicker(parkScanInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.SetupTimeout)
		if s, err := d.js.Stream(ctx, d.cfg.ParkedStream); err == nil {
			names := s.ConsumerNames(ctx)
			for name := range names.Name() {
				if token, ok := strings.CutPrefix(name, parkedConsumerPrefix); ok {
					_ = d.startParked(token)
				}
			}
		}
		cancel()
		select {
		case <-t.C:
		case <-d.stop:
			return
		}
	}
}

// parkedLoop pulls account's parked jobs until Stop, only while the
// account can run: after a refusal it waits until the account's breaker
// lets calls through.
func (d *durable) parkedLoop(account string, c jetstream.Consumer) {
	defer d.w.wg.Done()
	for !d.stopped() {
		if until := d.avail.blockedUntil(account, time.Now()); !until.IsZero() {
			d.sleep(time.Until(until))
			continue
		}
		if d.w.cfg.budget.defers(account) {
			d.sleep(500 * time.Millisecond)
			continue
		}
		if d.w.shares.full(account) {
			d.sleep(50 * time.Millisecond)
			continue
		}
		if !d.acquire() {
			return
		}
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(d.cfg.FetchWait))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				b := parkedBlock(msg.Subject())
				d.w.mu.Lock()
				d.w.wg.Add(1)
				d.w.mu.Unlock()
				d.running.Add(1)
				d.w.m.InFlight.Inc()
				if st, ok := d.w.stats[b]; ok {
					st.inFlight.Add(1)
				}
				go d.runParked(b, msg)
			}
		}
		if got == 0 {
			d.release(1)
			if err != nil {
				d.sleep(time.Second)
			}
		}
	}
}

// runParked runs a parked job like any durable job; one of an unknown
// block is handed back.
func (d *durable) runParked(b sfblocks.Block, msg jetstream.Msg) {
	if _, ok := d.w.stats[b]; !ok {
		defer func() {
			d.running.Add(-1)
			d.w.m.InFlight.Dec()
			<-d.w.sem
			d.w.wg.Done()
		}()
		d.settleMsg(b, msg, settlement{action: actionTerm}, "parked job of an unknown block")
		return
	}
	d.runFrom(b, msg, true)
}

// parkedBlock reads the block of a parked job from its subject,
// "<prefix>.parked.<block>.<account>".
func parkedBlock(subject string) sfblocks.Block {
	tokens := strings.Split(subject, ".")
	if len(tokens) < 4 {
		return ""
	}
	return sfblocks.Block(tokens[len(tokens)-2])
}

// sleep waits d or until Stop.
func (d *durable) sleep(wait time.Duration) {
	t := time.NewTimer(max(wait, time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.stop:
	}
}
