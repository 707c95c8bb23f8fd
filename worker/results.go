package worker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks/blocks"
)

// maxPlainKeyID is the longest job id whose key is its plain base64url
// encoding; longer ids are hashed, to keep keys (subjects) short.
const maxPlainKeyID = 192

// ResultKey returns the key under which the result of job id is kept in the
// results bucket: the id in unpadded base64url, so any id (with spaces,
// dots, colons...) makes a valid KV key, and an operator can decode it back;
// ids longer than 192 bytes use "h=" and the hex SHA-256 of the id instead
// ('=' never occurs in unpadded base64url, so the two forms cannot collide).
// The client package computes the same key.
func ResultKey(jobID string) string {
	if len(jobID) <= maxPlainKeyID {
		return base64.RawURLEncoding.EncodeToString([]byte(jobID))
	}
	sum := sha256.Sum256([]byte(jobID))
	return "h=" + hex.EncodeToString(sum[:])
}

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
func decodeKept(data []byte) *blocks.Reply {
	var r blocks.Reply
	if err := json.Unmarshal(data, &r); err != nil || r.Status == "" {
		return nil
	}
	return &r
}
