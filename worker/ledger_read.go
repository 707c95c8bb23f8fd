package worker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reads that see every write. A KV Get is a "direct get", which any
// replica of the bucket answers: on a single server that is the only copy,
// but on a cluster a follower answers too, and it may not have applied the
// latest writes yet (after a leader change, a node that restarted can lag
// for a while). The ledger must not miss a run record or a kept result
// because a follower answered, or an Insert could run twice. So with more
// than one replica the ledger reads through the bucket's stream leader
// ($JS.API.STREAM.MSG.GET, which only the leader answers): the leader
// acknowledged every write it holds, so it has all of them.

// entry is one ledger value as read.
type entry struct {
	value    []byte
	revision uint64
	created  time.Time
}

func (e *entry) Value() []byte      { return e.value }
func (e *entry) Revision() uint64   { return e.revision }
func (e *entry) Created() time.Time { return e.created }

// msgGetResponse is the JetStream API's answer to a message get.
type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// codeMessageNotFound is the API's answer for a subject with no message.
const codeMessageNotFound jetstream.ErrorCode = 10037

// leaderGet reads key of kv from the bucket's stream leader, with the
// answers of kv.Get: jetstream.ErrKeyNotFound when the key has no value
// (never written, deleted, purged, or expired).
func leaderGet(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) (*entry, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + kv.Bucket() + "." + key})
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+kvStream(kv), req)
	if err != nil {
		return nil, err
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, err
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == codeMessageNotFound {
			return nil, jetstream.ErrKeyNotFound
		}
		return nil, resp.Error
	}
	if resp.Message == nil {
		return nil, errors.New("worker: JetStream answered a message get without a message")
	}
	m := resp.Message
	if len(m.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return nil, err
		}
		// A delete or purge marker, or the marker of a key whose TTL ran out.
		if h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return nil, jetstream.ErrKeyNotFound
		}
	}
	return &entry{value: m.Data, revision: m.Sequence, created: m.Time}, nil
}
