package worker

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// TestWireGolden pins what the worker puts on the wire and in the
// dead-letter stream, byte for byte, against files recorded from the first
// release: moving the contract between packages must not change a byte a
// runtime or an operator's tooling reads.
func TestWireGolden(t *testing.T) {
	first := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	failed := blocks.FailureReply("j-1", &sfblocks.Error{Code: sfblocks.CodeTimeout, Message: "m", Retryable: true, ResultCode: 504, ResultBody: "x"})
	failed.Account = "prod"
	durable := newDeadLetter(sfblocks.Insert, sfblocks.PathDurable, sfblocks.ReasonAttemptsExhausted, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "j-1"}, "sfblocks.jobs.insert",
		[]byte(`{"id":"j-1"}`), nats.Header{"Reply-To": []string{"_INBOX.x"}}, failed,
		failureState{Attempts: 5, FirstFailure: first, LastFailure: first.Add(time.Minute)})
	durable.Replays, durable.ReplayOf = 2, 9
	sync := newDeadLetter(sfblocks.Search, sfblocks.PathSync, sfblocks.ReasonSyncFailure, sfblocks.JobIdentity{Block: sfblocks.Search, ID: "j-2"}, "sfblocks.search",
		[]byte{0xff, 0x00}, nil, blocks.FailureReply("j-2", &sfblocks.Error{Code: sfblocks.CodeInternal, Message: "m"}),
		failureState{Attempts: 1, FirstFailure: first, LastFailure: first})
	// Since the first release: a traced job's dead letter names its run.
	traced := newDeadLetter(sfblocks.Insert, sfblocks.PathDurable, sfblocks.ReasonPermanent, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "j-3"}, "sfblocks.jobs.insert",
		[]byte(`{"id":"j-3"}`), nats.Header{"traceparent": []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, failed,
		failureState{Attempts: 1, FirstFailure: first, LastFailure: first})
	traced.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
	n, created := 3, true
	ok := &sfblocks.Reply{ID: "j", Account: "a", Status: sfblocks.StatusOK, Count: &n, Truncated: true,
		Records: []map[string]any{{"Id": "1"}}, First: map[string]any{"Id": "1"}, ObjectID: "x", Created: &created, DurationMS: 4, Attempt: 1}
	tests := []struct {
		file  string
		given any
	}{
		{"deadletter.durable.json", durable},
		{"deadletter.sync.json", sync},
		{"deadletter.traced.json", traced},
		{"reply.ok.json", ok},
		{"reply.failed.json", failed},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("..", "testdata", "wire", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, bytes.TrimSpace(want)) {
				t.Errorf("encoding changed:\n got %s\nwant %s", got, want)
			}
			if r, ok := tt.given.(*sfblocks.Reply); ok {
				// What the worker publishes: its own encoding of replies.
				if own, err := marshalReply(r); err != nil || !bytes.Equal(own, bytes.TrimSpace(want)) {
					t.Errorf("the worker's encoding: %s, %v\nwant %s", own, err, want)
				}
			}
		})
	}
}
