package worker

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPayloadsBucket is the JetStream object store keeping the payloads
// of dead letters too large to carry their job inline.
const DefaultPayloadsBucket = "sfblocks_dlq_payloads"

// payloadStore keeps the payloads of jobs whose dead-letter envelope would
// exceed the NATS max payload: a job of the largest accepted size, binary
// or JSON, fills a message on its own, so its envelope cannot hold it too.
// The object store chunks it; the envelope names it in PayloadRef.
type payloadStore struct {
	d    *durable
	once sync.Mutex
	obj  jetstream.ObjectStore
}

func (d *durable) payloadStore() *payloadStore {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.payloads == nil {
		d.payloads = &payloadStore{d: d}
	}
	return d.payloads
}

// store opens the object store, creating it (TTL as the dead letters'),
// on first use.
func (p *payloadStore) store(ctx context.Context) (jetstream.ObjectStore, error) {
	p.once.Lock()
	defer p.once.Unlock()
	if p.obj != nil {
		return p.obj, nil
	}
	cfg := jetstream.ObjectStoreConfig{
		Bucket:      p.d.cfg.PayloadsBucket,
		Description: "sfblocks: payloads of dead letters too large to carry them inline",
		TTL:         p.d.cfg.DLQMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    p.d.cfg.Replicas,
	}
	obj, err := p.d.js.ObjectStore(ctx, cfg.Bucket)
	if err != nil {
		obj, err = p.d.js.CreateObjectStore(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("worker: opening the dead-letter payload store %s: %w", cfg.Bucket, withReplicasHint(err, cfg.Replicas))
	}
	p.obj = obj
	return obj, nil
}

// put keeps payload under name (a job key: a newer dead letter of the job
// replaces the older, as in the stream) and returns its reference.
func (p *payloadStore) put(ctx context.Context, name string, payload []byte) (string, error) {
	ctx, cancel := bookkeeping(ctx, 3*p.d.ledger.timeout)
	defer cancel()
	obj, err := p.store(ctx)
	if err != nil {
		return "", err
	}
	if _, err := obj.PutBytes(ctx, name, payload); err != nil {
		return "", fmt.Errorf("worker: keeping a dead letter's payload in %s: %w", p.d.cfg.PayloadsBucket, err)
	}
	return p.d.cfg.PayloadsBucket + "/" + name, nil
}
