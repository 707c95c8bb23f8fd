package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Replicas on a cluster. Every stream and bucket the fleet creates takes
// DurableConfig.Replicas (1 by default, 3 on a three-node cluster). A
// single server accepts 1 only; a cluster accepts at most as many as it
// has JetStream servers up. Both refusals come from the server when the
// stream is created, in its words ("replicas > 1 not supported in
// non-clustered mode", "insufficient resources"); replicasHint turns them
// into what to do.

// JetStream API error codes of a replica count the server cannot place.
const (
	codeReplicasNotSupported  jetstream.ErrorCode = 10074 // JSStreamReplicasNotSupportedErr
	codeInsufficientResources jetstream.ErrorCode = 10023 // JSInsufficientResourcesErr
	codeNoSuitablePeers       jetstream.ErrorCode = 10005 // JSClusterNoPeersErr
)

// replicasHint explains err, the failure to create or update a stream
// with replicas, when the replica count is its cause; otherwise it returns
// "".
func replicasHint(err error, replicas int) string {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return ""
	}
	switch apiErr.ErrorCode {
	case codeReplicasNotSupported:
		return fmt.Sprintf("--replicas %d needs a JetStream cluster, and this NATS server is not clustered: run the workers with --replicas 1, "+
			"or connect them to a cluster of at least %d nodes (README, Running on a cluster)", replicas, replicas)
	case codeInsufficientResources, codeNoSuitablePeers:
		return fmt.Sprintf("--replicas %d: the cluster has fewer than %d JetStream servers up to place it on (is a node down, or is the cluster smaller?): "+
			"start the missing nodes, or run the workers with --replicas at most the number of nodes (README, Running on a cluster)", replicas, replicas)
	}
	return ""
}

// withReplicasHint wraps err with replicasHint's explanation, if any.
func withReplicasHint(err error, replicas int) error {
	if h := replicasHint(err, replicas); h != "" {
		return fmt.Errorf("%w; %s", err, h)
	}
	return err
}

// CheckReplicas tells, before anything is created, whether the NATS server
// nc is connected to can hold replicas copies: a server that is not part of
// a cluster holds 1 only. It returns nil when it cannot tell (more than one
// replica on a cluster: the server itself says at creation whether it has
// enough nodes up). The error says what to do.
func CheckReplicas(nc *nats.Conn, replicas int) error {
	if replicas < 1 || replicas > 5 {
		return fmt.Errorf("%w: --replicas %d: must be between 1 and 5 (3 on a three-node cluster)", ErrInvalidOption, replicas)
	}
	if replicas == 1 || !nc.IsConnected() {
		return nil
	}
	if nc.ConnectedClusterName() == "" {
		return fmt.Errorf("%w: --replicas %d needs a JetStream cluster, and the NATS server %s (%s) is not part of one: "+
			"run with --replicas 1, or give --nats-url the nodes of a cluster of at least %d (README, Running on a cluster)",
			ErrInvalidOption, replicas, nc.ConnectedServerName(), nc.ConnectedUrlRedacted(), replicas)
	}
	return nil
}

// ensureReplicas keeps the replica count of a bucket the fleet shares but
// whose other settings are not the fleet's (the token bucket, owned by
// package auth; the status bucket): without apply it records a difference,
// with apply it changes the count and nothing else. A missing bucket is
// left to its owner to create.
func (f *fleet) ensureReplicas(ctx context.Context, bucket string) error {
	kv, err := f.js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("worker: reading bucket %s: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("worker: reading bucket %s: %w", bucket, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil
	}
	cfg := bs.StreamInfo().Config
	if cfg.Replicas == f.cfg.Replicas {
		return nil
	}
	if !f.apply {
		f.diff("bucket "+bucket, "Replicas", cfg.Replicas, f.cfg.Replicas)
		return nil
	}
	cfg.Replicas = f.cfg.Replicas
	if _, err := f.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("worker: updating bucket %s to %d replicas: %w", bucket, f.cfg.Replicas, withReplicasHint(err, f.cfg.Replicas))
	}
	f.changed = append(f.changed, fmt.Sprintf("updated bucket %s (Replicas %d)", bucket, f.cfg.Replicas))
	return nil
}

// sharedBuckets are the buckets whose replica count fleet check and apply
// keep in line besides the fleet's own: DurableConfig.SharedBuckets.
func (f *fleet) sharedBuckets(ctx context.Context) error {
	var errs []string
	for _, b := range f.cfg.SharedBuckets {
		if err := f.ensureReplicas(ctx, b); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
