package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
)

// Fleet settings are the JetStream streams, consumers and buckets every
// worker of a fleet shares. They have one owner: the operator. A worker
// creates what is missing, with its own flags, but never rewrites what
// exists: when its flags disagree with the fleet's settings it logs one
// error naming each difference and runs with the fleet's (for example, it
// signals progress at the consumer's actual AckWait, not its own flag).
// Changing them is explicit: [ApplyFleet], which `sfblocks fleet apply`
// runs.

// DefaultClaimsBucket is the KV bucket holding the leases of jobs being
// attempted (per-key TTL, enforced by the server's clock).
const DefaultClaimsBucket = "sfblocks_claims"

// claimsMarkerTTL is how long the claims bucket keeps the marker of a
// lease that expired (required by JetStream for per-key TTLs).
const claimsMarkerTTL = time.Minute

// FleetDiff is one setting on which a worker's flags and the fleet
// disagree.
type FleetDiff struct {
	// Object is the stream, consumer or bucket, e.g. "consumer insert".
	Object string
	// Setting is the setting's name, e.g. "AckWait".
	Setting string
	// Fleet is the fleet's value, Flags the worker's.
	Fleet, Flags string
}

// String writes the difference as a log line names it.
func (f FleetDiff) String() string {
	return fmt.Sprintf("%s %s: fleet has %s, flags say %s", f.Object, f.Setting, f.Fleet, f.Flags)
}

// fleet creates, checks or applies the fleet's settings.
type fleet struct {
	js     jetstream.JetStream
	cfg    DurableConfig
	prefix string
	apply  bool
	diffs  []FleetDiff
	// changed lists what apply created or updated.
	changed []string
}

// ApplyFleet creates or updates the fleet's streams, consumers and buckets
// on js to match cfg (with maxInFlight for the defaults derived from it)
// and prefix, and returns what it changed. Workers already running keep
// their own view of the settings until they restart; a stream or bucket
// whose retention or storage differs cannot be updated and makes
// ApplyFleet fail naming it.
func ApplyFleet(ctx context.Context, js jetstream.JetStream, prefix string, cfg DurableConfig, maxInFlight int) ([]string, error) {
	c, err := cfg.withDefaults(maxInFlight)
	if err != nil {
		return nil, err
	}
	f := &fleet{js: js, cfg: c, prefix: prefix, apply: true}
	if _, err := f.ensureAll(ctx); err != nil {
		return f.changed, err
	}
	err = f.sharedBuckets(ctx)
	return f.changed, err
}

// CheckFleet compares the fleet's existing settings on js with cfg, and
// returns every difference; it creates and changes nothing.
func CheckFleet(ctx context.Context, js jetstream.JetStream, prefix string, cfg DurableConfig, maxInFlight int) ([]FleetDiff, error) {
	c, err := cfg.withDefaults(maxInFlight)
	if err != nil {
		return nil, err
	}
	f := &fleet{js: js, cfg: c, prefix: prefix}
	for _, b := range sfblocks.Blocks() {
		want := f.consumerConfig(b)
		cons, err := js.Consumer(ctx, c.Stream, want.Durable)
		if err != nil {
			return nil, fmt.Errorf("worker: reading consumer %s: %w", want.Durable, err)
		}
		f.compareConsumer(cons.CachedInfo().Config, want)
	}
	for _, want := range []jetstream.StreamConfig{f.jobsStreamConfig(), f.dlqStreamConfig(), f.parkedStreamConfig()} {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			return nil, fmt.Errorf("worker: reading stream %s: %w", want.Name, err)
		}
		f.compareStream(s.CachedInfo().Config, want)
	}
	for _, want := range f.bucketConfigs() {
		kv, err := js.KeyValue(ctx, want.Bucket)
		if err != nil {
			return nil, fmt.Errorf("worker: reading bucket %s: %w", want.Bucket, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("worker: reading bucket %s: %w", want.Bucket, err)
		}
		f.compareBucket(st, want)
	}
	if err := f.sharedBuckets(ctx); err != nil {
		return f.diffs, err
	}
	return f.diffs, nil
}

// fleetObjects is what ensureAll returns: the handles the worker uses.
type fleetObjects struct {
	consumers map[sfblocks.Block]jetstream.Consumer
	// ackWait is each consumer's actual AckWait.
	ackWait  map[sfblocks.Block]time.Duration
	results  jetstream.KeyValue
	attempts jetstream.KeyValue
	claims   jetstream.KeyValue
	// replicated is set when a ledger bucket has more than one replica:
	// its reads then go through its leader (see ledger_read.go).
	replicated bool
}

// ensureAll creates what is missing and, with apply, updates what differs;
// without apply it records the differences in f.diffs.
func (f *fleet) ensureAll(ctx context.Context) (*fleetObjects, error) {
	if err := f.ensureStream(ctx, f.jobsStreamConfig()); err != nil {
		if replicasHint(err, f.cfg.Replicas) != "" {
			return nil, err
		}
		return nil, fmt.Errorf("%w (is JetStream enabled on the NATS server?)", err)
	}
	objs := &fleetObjects{consumers: map[sfblocks.Block]jetstream.Consumer{}, ackWait: map[sfblocks.Block]time.Duration{}}
	for _, b := range sfblocks.Blocks() {
		c, err := f.ensureConsumer(ctx, b)
		if err != nil {
			return nil, err
		}
		objs.consumers[b] = c
		objs.ackWait[b] = c.CachedInfo().Config.AckWait
	}
	kvs := make([]jetstream.KeyValue, 0, 3)
	for _, cfg := range f.bucketConfigs() {
		kv, err := f.ensureBucket(ctx, cfg)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, kv)
	}
	objs.results, objs.attempts, objs.claims = kvs[0], kvs[1], kvs[2]
	for _, kv := range kvs {
		if st, err := kv.Status(ctx); err == nil {
			if r, ok := bucketReplicas(st); ok && r > 1 {
				objs.replicated = true
			}
		}
	}
	if err := f.ensureStream(ctx, f.dlqStreamConfig()); err != nil {
		return nil, err
	}
	if err := f.ensureStream(ctx, f.parkedStreamConfig()); err != nil {
		return nil, err
	}
	return objs, nil
}

func (f *fleet) jobsStreamConfig() jetstream.StreamConfig {
	subjects := make([]string, 0, 2)
	for _, b := range sfblocks.Blocks() {
		subjects = append(subjects, sfblocks.JobsSubject(f.prefix, b))
	}
	return jetstream.StreamConfig{
		Name:        f.cfg.Stream,
		Description: "sfblocks durable jobs: one message per job, removed once a worker acks it",
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  f.cfg.DuplicateWindow,
		Replicas:    f.cfg.Replicas,
	}
}

// dlqStreamConfig is the dead-letter stream: limits retention (a dead
// letter stays until it expires, is replayed successfully or purged), one
// message per job. With a size cap it discards new messages, so a full
// stream makes dead-lettering fail (and the job is handed back) instead of
// silently dropping the oldest dead letters.
func (f *fleet) dlqStreamConfig() jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:              f.cfg.DLQStream,
		Description:       "sfblocks dead letters: durable jobs that failed for good, and failed synchronous inserts",
		Subjects:          []string{f.prefix + ".dlq.>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		MaxAge:            f.cfg.DLQMaxAge,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		Discard:           jetstream.DiscardOld,
		Replicas:          f.cfg.Replicas,
	}
	if f.cfg.DLQMaxMsgs > 0 {
		cfg.MaxMsgs = f.cfg.DLQMaxMsgs
	}
	if f.cfg.DLQMaxBytes > 0 {
		cfg.MaxBytes = f.cfg.DLQMaxBytes
	}
	if f.cfg.DLQMaxMsgs > 0 || f.cfg.DLQMaxBytes > 0 {
		cfg.Discard = jetstream.DiscardNew
	}
	return cfg
}

// consumerConfig is the durable pull consumer of block shared by the fleet.
func (f *fleet) consumerConfig(b sfblocks.Block) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       string(b),
		Description:   "sfblocks workers pulling " + string(b) + " jobs",
		FilterSubject: sfblocks.JobsSubject(f.prefix, b),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       f.cfg.AckWait,
		MaxDeliver:    f.cfg.MaxDeliver,
		MaxAckPending: f.cfg.MaxAckPending,
	}
}

// bucketConfigs are the results, attempts and claims buckets, in that
// order.
func (f *fleet) bucketConfigs() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{
			Bucket:      f.cfg.ResultsBucket,
			Description: "sfblocks results of finished jobs, by job identity",
			TTL:         f.cfg.ResultsTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    f.cfg.Replicas,
			History:     1,
		},
		{
			Bucket:      f.cfg.AttemptsBucket,
			Description: "sfblocks attempts of jobs: failures, and inserts whose outcome is not known yet, by job identity",
			TTL:         f.cfg.ResultsTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    f.cfg.Replicas,
			History:     1,
		},
		{
			Bucket:         f.cfg.ClaimsBucket,
			Description:    "sfblocks leases of jobs being attempted; each expires by the server's clock",
			Storage:        jetstream.FileStorage,
			Replicas:       f.cfg.Replicas,
			History:        1,
			LimitMarkerTTL: claimsMarkerTTL,
		},
	}
}

func (f *fleet) ensureStream(ctx context.Context, want jetstream.StreamConfig) error {
	s, err := f.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := f.js.CreateStream(ctx, want); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("worker: creating stream %s: %w", want.Name, withReplicasHint(err, want.Replicas))
		}
		f.changed = append(f.changed, "created stream "+want.Name)
		return nil
	case err != nil:
		return fmt.Errorf("worker: reading stream %s: %w", want.Name, err)
	}
	if !f.apply {
		f.compareStream(s.CachedInfo().Config, want)
		return nil
	}
	before := len(f.diffs)
	f.compareStream(s.CachedInfo().Config, want)
	if len(f.diffs) == before {
		return nil
	}
	f.diffs = f.diffs[:before]
	if _, err := f.js.UpdateStream(ctx, want); err != nil {
		if h := replicasHint(err, want.Replicas); h != "" {
			return fmt.Errorf("worker: updating stream %s: %w; %s", want.Name, err, h)
		}
		return fmt.Errorf("worker: updating stream %s: %w (a stream's retention and storage cannot change: delete it, or use another name)", want.Name, err)
	}
	f.changed = append(f.changed, "updated stream "+want.Name)
	return nil
}

func (f *fleet) ensureConsumer(ctx context.Context, b sfblocks.Block) (jetstream.Consumer, error) {
	want := f.consumerConfig(b)
	c, err := f.js.Consumer(ctx, f.cfg.Stream, want.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err = f.js.CreateConsumer(ctx, f.cfg.Stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Another worker created it first.
			c, err = f.js.Consumer(ctx, f.cfg.Stream, want.Durable)
		} else if err == nil {
			f.changed = append(f.changed, "created consumer "+want.Durable)
		}
		if err != nil {
			return nil, fmt.Errorf("worker: creating consumer %s on stream %s: %w", want.Durable, f.cfg.Stream, err)
		}
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("worker: reading consumer %s on stream %s: %w", want.Durable, f.cfg.Stream, err)
	}
	before := len(f.diffs)
	f.compareConsumer(c.CachedInfo().Config, want)
	if !f.apply || len(f.diffs) == before {
		return c, nil
	}
	f.diffs = f.diffs[:before]
	if c, err = f.js.UpdateConsumer(ctx, f.cfg.Stream, want); err != nil {
		return nil, fmt.Errorf("worker: updating consumer %s: %w", want.Durable, err)
	}
	f.changed = append(f.changed, "updated consumer "+want.Durable)
	return c, nil
}

func (f *fleet) ensureBucket(ctx context.Context, want jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := f.js.KeyValue(ctx, want.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		kv, err = f.js.CreateKeyValue(ctx, want)
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			kv, err = f.js.KeyValue(ctx, want.Bucket)
		} else if err == nil {
			f.changed = append(f.changed, "created bucket "+want.Bucket)
		}
		if err != nil {
			return nil, fmt.Errorf("worker: creating bucket %s: %w", want.Bucket, withReplicasHint(err, want.Replicas))
		}
		return kv, nil
	case err != nil:
		return nil, fmt.Errorf("worker: reading bucket %s: %w", want.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("worker: reading bucket %s: %w", want.Bucket, err)
	}
	before := len(f.diffs)
	f.compareBucket(st, want)
	if !f.apply || len(f.diffs) == before {
		return kv, nil
	}
	f.diffs = f.diffs[:before]
	if kv, err = f.js.UpdateKeyValue(ctx, want); err != nil {
		return nil, fmt.Errorf("worker: updating bucket %s: %w", want.Bucket, withReplicasHint(err, want.Replicas))
	}
	f.changed = append(f.changed, "updated bucket "+want.Bucket)
	return kv, nil
}

func (f *fleet) diff(object, setting string, fleet, flags any) {
	fs, gs := fmt.Sprint(fleet), fmt.Sprint(flags)
	if fs != gs {
		f.diffs = append(f.diffs, FleetDiff{Object: object, Setting: setting, Fleet: fs, Flags: gs})
	}
}

func (f *fleet) compareStream(have, want jetstream.StreamConfig) {
	obj := "stream " + want.Name
	hs, ws := slices.Clone(have.Subjects), slices.Clone(want.Subjects)
	slices.Sort(hs)
	slices.Sort(ws)
	f.diff(obj, "Subjects", strings.Join(hs, ","), strings.Join(ws, ","))
	f.diff(obj, "Retention", have.Retention, want.Retention)
	f.diff(obj, "Storage", have.Storage, want.Storage)
	f.diff(obj, "Replicas", have.Replicas, want.Replicas)
	if want.Duplicates != 0 {
		f.diff(obj, "Duplicates", have.Duplicates, want.Duplicates)
	}
	f.diff(obj, "MaxAge", have.MaxAge, want.MaxAge)
	if want.MaxMsgsPerSubject != 0 {
		f.diff(obj, "MaxMsgsPerSubject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	}
	if want.MaxMsgs != 0 {
		f.diff(obj, "MaxMsgs", have.MaxMsgs, want.MaxMsgs)
		f.diff(obj, "MaxBytes", have.MaxBytes, want.MaxBytes)
		f.diff(obj, "Discard", have.Discard, want.Discard)
	}
}

func (f *fleet) compareConsumer(have, want jetstream.ConsumerConfig) {
	obj := "consumer " + want.Durable
	f.diff(obj, "FilterSubject", have.FilterSubject, want.FilterSubject)
	f.diff(obj, "AckWait", have.AckWait, want.AckWait)
	f.diff(obj, "MaxDeliver", have.MaxDeliver, want.MaxDeliver)
	f.diff(obj, "MaxAckPending", have.MaxAckPending, want.MaxAckPending)
}

func (f *fleet) compareBucket(have jetstream.KeyValueStatus, want jetstream.KeyValueConfig) {
	obj := "bucket " + want.Bucket
	f.diff(obj, "TTL", have.TTL(), want.TTL)
	f.diff(obj, "History", have.History(), want.History)
	f.diff(obj, "LimitMarkerTTL", have.LimitMarkerTTL(), want.LimitMarkerTTL)
	if r, ok := bucketReplicas(have); ok {
		f.diff(obj, "Replicas", r, want.Replicas)
	}
}

// bucketReplicas reads a bucket's replica count from its stream info.
func bucketReplicas(st jetstream.KeyValueStatus) (int, bool) {
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return s.StreamInfo().Config.Replicas, true
	}
	return 0, false
}
