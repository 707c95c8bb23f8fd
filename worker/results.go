package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
)

// results keeps finished durable jobs' replies in the KV bucket.
type results struct {
	kv      jetstream.KeyValue
	timeout time.Duration // per attempt
}

// get returns the kept reply JSON of key, nil when there is none.
func (r *results) get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	e, err := r.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("worker: reading the kept result: %w", err)
	}
	return e.Value(), nil
}

// put keeps data under key, retrying a few times: a put lost while NATS
// reconnects is repeated rather than given up at once.
func (r *results) put(ctx context.Context, key string, data []byte) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		actx, cancel := context.WithTimeout(ctx, r.timeout)
		_, err = r.kv.Put(actx, key, data)
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("worker: keeping the result: %w", err)
}

// decodeKept reads a kept reply; nil when it does not decode (then the job
// runs again rather than answering garbage).
func decodeKept(data []byte) *sfblocks.Reply {
	var r sfblocks.Reply
	if err := json.Unmarshal(data, &r); err != nil || r.Status == "" {
		return nil
	}
	return &r
}
