package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
)

// Dead-letter errors.
var (
	// ErrNoDLQ: no stream captures "<prefix>.dlq.>" (no worker with the
	// durable path started on this prefix yet).
	ErrNoDLQ = errors.New("client: no dead-letter stream on this prefix (start a worker with the durable path)")
	// ErrNoDeadLetter: no dead letter has that job id or sequence.
	ErrNoDeadLetter = errors.New("client: no such dead letter")
)

// DLQFilter selects dead letters; its zero value selects all of them.
type DLQFilter struct {
	// Refs are job ids, or stream sequences written seq:N; when set, only
	// these (and the other fields still filter them).
	Refs []string
	// Block and Account keep dead letters with exactly that block and
	// account. Code keeps those whose error code (AUTH_FAILED) or
	// Salesforce code (REQUIRED_FIELD_MISSING) it is: an operator reads
	// either in the listing and filters on what they read.
	Block   sfblocks.Block
	Account string
	Code    sfblocks.Code
	// SalesforceCode keeps dead letters whose error carries exactly that
	// Salesforce errorCode (REQUIRED_FIELD_MISSING, UNABLE_TO_LOCK_ROW...).
	SalesforceCode string
	// Since and Until bound when the dead letter was stored.
	Since, Until time.Time
	// Limit is the most dead letters returned (the oldest first); 0 means
	// no limit.
	Limit int
}

// Empty reports whether f selects every dead letter.
func (f DLQFilter) Empty() bool {
	return len(f.Refs) == 0 && f.Block == "" && f.Account == "" && f.Code == "" && f.SalesforceCode == "" && f.Since.IsZero() && f.Until.IsZero()
}

func (f DLQFilter) match(dl *sfblocks.DeadLetter) bool {
	return (f.Block == "" || dl.Block == f.Block) && (f.Account == "" || dl.Account == f.Account) &&
		(f.Code == "" || dl.Error.Code == f.Code || string(f.Code) == dl.Error.SalesforceCode) &&
		(f.SalesforceCode == "" || dl.Error.SalesforceCode == f.SalesforceCode) &&
		(f.Since.IsZero() || !dl.Stored.Before(f.Since)) && (f.Until.IsZero() || dl.Stored.Before(f.Until))
}

// DLQInfo describes the dead-letter stream and its retention.
type DLQInfo struct {
	Stream   string `json:"stream"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// LastSeq is the sequence of the newest dead letter stored (deleted
	// since or not): with Messages, it tells whether the stream changed.
	LastSeq uint64        `json:"last_seq"`
	MaxAge  time.Duration `json:"max_age"`
	// MaxMsgs and MaxBytes are -1 when not capped.
	MaxMsgs  int64 `json:"max_msgs"`
	MaxBytes int64 `json:"max_bytes"`
	// Discard is "new" (a full stream refuses dead letters, and workers
	// hand the jobs back) or "old".
	Discard string `json:"discard"`
}

func (c *Client) dlqSubject(block sfblocks.Block) string {
	if block == "" {
		return c.prefix + ".dlq.>"
	}
	return c.prefix + ".dlq." + string(block) + ".>"
}

// dlqStream finds the stream capturing the prefix's dead letters.
func (c *Client) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	name, err := js.StreamNameBySubject(ctx, c.dlqSubject(""))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %w", ErrNoDLQ, err)
	}
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	return s, nil
}

// DLQInfo returns the dead-letter stream's state and retention. It fails
// with [ErrNoDLQ] when there is no such stream.
func (c *Client) DLQInfo(ctx context.Context) (*DLQInfo, error) {
	s, err := c.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	d := "old"
	if info.Config.Discard == jetstream.DiscardNew {
		d = "new"
	}
	return &DLQInfo{Stream: info.Config.Name, Messages: info.State.Msgs, Bytes: info.State.Bytes, LastSeq: info.State.LastSeq, MaxAge: info.Config.MaxAge,
		MaxMsgs: info.Config.MaxMsgs, MaxBytes: info.Config.MaxBytes, Discard: d}, nil
}

func decodeDeadLetter(data []byte, seq uint64, stored time.Time) (*sfblocks.DeadLetter, error) {
	var dl sfblocks.DeadLetter
	if err := json.Unmarshal(data, &dl); err != nil {
		return nil, fmt.Errorf("client: dead letter %d is not a JSON envelope: %w", seq, err)
	}
	dl.Seq, dl.Stored = seq, stored.UTC()
	return &dl, nil
}

// ListDeadLetters returns the dead letters f selects, oldest first. It
// reads the stream with an ordered consumer that starts at f.Since.
func (c *Client) ListDeadLetters(ctx context.Context, f DLQFilter) ([]*sfblocks.DeadLetter, error) {
	if len(f.Refs) > 0 {
		var out []*sfblocks.DeadLetter
		for _, ref := range f.Refs {
			dls, err := c.deadLettersOf(ctx, ref)
			if err != nil {
				return nil, err
			}
			if len(dls) == 0 {
				return nil, fmt.Errorf("%w: %q is neither a dead-lettered job id nor seq:N of a dead letter", ErrNoDeadLetter, ref)
			}
			for _, dl := range dls {
				if f.match(dl) {
					out = append(out, dl)
				}
			}
		}
		return out, nil
	}
	s, err := c.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{c.dlqSubject(f.Block)}}
	if !f.Since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &f.Since
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	var out []*sfblocks.DeadLetter
	for {
		// The stream is at rest: every dead letter is there already, so a
		// pull that waits for more would only wait out its timeout.
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, transportError(c.dlqSubject(""), err)
		}
		n, done := 0, false
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			done = meta.NumPending == 0 || meta.Sequence.Stream >= info.State.LastSeq
			dl, err := decodeDeadLetter(msg.Data(), meta.Sequence.Stream, meta.Timestamp)
			if err != nil || !f.match(dl) {
				continue
			}
			if !f.Until.IsZero() && !dl.Stored.Before(f.Until) {
				done = true
				continue
			}
			out = append(out, dl)
			if f.Limit > 0 && len(out) >= f.Limit {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, transportError(c.dlqSubject(""), err)
		}
		if n == 0 || done {
			return out, nil
		}
	}
}

// ErrAmbiguousRef: a job id names dead letters of several jobs (the same
// id under two blocks or two accounts); name one by its sequence.
var ErrAmbiguousRef = errors.New("client: the job id names the dead letters of several jobs; use seq:N")

// GetDeadLetter returns one dead letter by stream sequence, written
// "seq:17", or by job id (searched under every block and account; a bare
// number is a job id, never a sequence). It fails with [ErrNoDeadLetter]
// when there is none, and with [ErrAmbiguousRef] when the id names the
// dead letters of several jobs.
func (c *Client) GetDeadLetter(ctx context.Context, ref string) (*sfblocks.DeadLetter, error) {
	dls, err := c.deadLettersOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	switch len(dls) {
	case 0:
		return nil, fmt.Errorf("%w: no dead letter has job id %q (a sequence is written seq:N)", ErrNoDeadLetter, ref)
	case 1:
		return dls[0], nil
	}
	seqs := make([]string, len(dls))
	for i, dl := range dls {
		seqs[i] = fmt.Sprintf("seq:%d (%s, account %q)", dl.Seq, dl.Block, dl.Account)
	}
	return nil, fmt.Errorf("%w: %q is %s", ErrAmbiguousRef, ref, strings.Join(seqs, ", "))
}

// deadLettersOf returns the dead letters ref names: one sequence, or every
// job with that id.
func (c *Client) deadLettersOf(ctx context.Context, ref string) ([]*sfblocks.DeadLetter, error) {
	s, err := c.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	if n, ok := strings.CutPrefix(ref, "seq:"); ok {
		seq, err := strconv.ParseUint(n, 10, 64)
		if err != nil || seq == 0 {
			return nil, fmt.Errorf("%w: %q: a sequence is written seq:N with N a positive number", ErrNoDeadLetter, ref)
		}
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !strings.HasPrefix(m.Subject, c.prefix+".dlq.")) {
			return nil, nil
		}
		if err != nil {
			return nil, transportError(c.dlqSubject(""), err)
		}
		dl, err := decodeDeadLetter(m.Data, m.Sequence, m.Time)
		if err != nil {
			return nil, err
		}
		return []*sfblocks.DeadLetter{dl}, nil
	}
	// The id's token is the last of the job key: match it under every
	// block and account.
	key := sfblocks.JobIdentity{ID: ref}.Key()
	subject := c.prefix + ".dlq.*.*." + key[strings.LastIndexByte(key, '.')+1:]
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy})
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	var out []*sfblocks.DeadLetter
	for {
		batch, err := cons.FetchNoWait(64)
		if err != nil {
			return nil, transportError(c.dlqSubject(""), err)
		}
		n, done := 0, false
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			done = meta.NumPending == 0
			if dl, err := decodeDeadLetter(msg.Data(), meta.Sequence.Stream, meta.Timestamp); err == nil {
				out = append(out, dl)
			}
		}
		if n == 0 || done {
			return out, nil
		}
	}
}

// PurgeDeadLetters deletes the dead letters f selects (all of them for an
// empty filter) and returns how many it deleted. Deleted dead letters are
// gone for good: list them first.
func (c *Client) PurgeDeadLetters(ctx context.Context, f DLQFilter) (int, error) {
	dls, err := c.ListDeadLetters(ctx, f)
	if err != nil {
		return 0, err
	}
	return c.deleteDeadLetters(ctx, dls)
}

func (c *Client) deleteDeadLetters(ctx context.Context, dls []*sfblocks.DeadLetter) (int, error) {
	if len(dls) == 0 {
		return 0, nil
	}
	s, err := c.dlqStream(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dl := range dls {
		switch err := s.DeleteMsg(ctx, dl.Seq); {
		case err == nil:
			n++
		case errors.Is(err, jetstream.ErrMsgNotFound), strings.Contains(err.Error(), "no message found"):
			// Already replaced (a newer dead letter of the job) or expired.
		default:
			return n, transportError(c.dlqSubject(""), err)
		}
	}
	return n, nil
}

// DeadLetterOf returns the dead letter of one job, named by its identity:
// its block, its account as the job named it ("" for the default) and its
// id. It fails with [ErrNoDeadLetter] when the job has none, and with
// [ErrNoDLQ] when there is no dead-letter stream.
func (c *Client) DeadLetterOf(ctx context.Context, job sfblocks.JobIdentity) (*sfblocks.DeadLetter, error) {
	s, err := c.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.GetLastMsgForSubject(ctx, sfblocks.DLQSubject(c.prefix, job))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %s job %q of account %q has none", ErrNoDeadLetter, job.Block, job.ID, job.Account)
	}
	if err != nil {
		return nil, transportError(c.dlqSubject(""), err)
	}
	return decodeDeadLetter(m.Data, m.Sequence, m.Time)
}
