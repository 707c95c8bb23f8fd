package worker

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// TestLedgerCostPerJob measures what the exactly-once bookkeeping costs a
// job: KV writes per bucket (read off each bucket's stream sequence) and
// Salesforce calls, for each kind of job, with no fault. It asserts the
// writes, which are the design's, and logs them for the README. (The reads
// are in the code: a durable job reads its kept result, a job that writes
// also its attempts; direct gets are not in the account's API count.)
func TestLedgerCostPerJob(t *testing.T) {
	t.Parallel()
	const n = 50
	tests := []struct {
		name      string
		sync      bool
		idem      bool
		job       func(i int) (sfblocks.Block, string)
		wantWrite map[string]float64 // per job, by bucket
	}{
		{"durable plain insert", false, false, func(i int) (sfblocks.Block, string) {
			return sfblocks.Insert, taskJob(fmt.Sprintf("cost-%d", i), fmt.Sprintf("cost %d", i))
		}, map[string]float64{"results": 1, "attempts": 1, "claims": 1}},
		{"durable insert, idempotency field", false, true, func(i int) (sfblocks.Block, string) {
			return sfblocks.Insert, taskJob(fmt.Sprintf("cost-%d", i), fmt.Sprintf("cost %d", i))
		}, map[string]float64{"results": 1, "attempts": 0, "claims": 1}},
		{"durable search", false, false, func(i int) (sfblocks.Block, string) {
			return sfblocks.Search, fmt.Sprintf(`{"id":"cost-%d","query":"SELECT Id FROM Contact LIMIT 1"}`, i)
		}, map[string]float64{"results": 1, "attempts": 0, "claims": 0}},
		{"sync plain insert with an id", true, false, func(i int) (sfblocks.Block, string) {
			return sfblocks.Insert, taskJob(fmt.Sprintf("cost-%d", i), fmt.Sprintf("cost %d", i))
		}, map[string]float64{"results": 1, "attempts": 1, "claims": 1}},
		{"sync search", true, false, func(i int) (sfblocks.Block, string) {
			return sfblocks.Search, fmt.Sprintf(`{"id":"cost-%d","query":"SELECT Id FROM Contact LIMIT 1"}`, i)
		}, map[string]float64{"results": 0, "attempts": 0, "claims": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExo(t)
			if tt.idem {
				e.idem = map[string]string{"a": simdb.JobIDField}
			}
			e.worker(nil, exoFast)
			// One job first, so that tokens, describes and buckets exist.
			block, payload := tt.job(-1)
			if tt.sync {
				e.request(block, payload)
			} else {
				next := e.replies("reply.cost.warm")
				e.publish(block, "", "cost--1", payload, "reply.cost.warm")
				next(1)
			}
			seqs0 := e.ledgerSeqs()
			calls0 := sumAPICalls(e.sim.Stats().APICalls)
			next := e.replies("reply.cost")
			for i := range n {
				block, payload := tt.job(i)
				if tt.sync {
					if r := e.request(block, payload); r.Status == sfblocks.StatusFailed {
						t.Fatalf("job %d: %+v", i, r.Error)
					}
				} else {
					e.publish(block, "", fmt.Sprintf("cost-%d", i), payload, "reply.cost")
				}
			}
			if !tt.sync {
				next(n)
			}
			seqs := e.ledgerSeqs()
			line := ""
			for _, b := range []string{"results", "attempts", "claims"} {
				got := float64(seqs[b]-seqs0[b]) / n
				line += fmt.Sprintf("%s writes %.2f, ", b, got)
				if got != tt.wantWrite[b] {
					t.Errorf("%s writes per job = %.2f, want %.2f", b, got, tt.wantWrite[b])
				}
			}
			t.Logf("%s, per job: %sSalesforce calls %.2f", tt.name, line,
				float64(sumAPICalls(e.sim.Stats().APICalls)-calls0)/n)
		})
	}
}

// ledgerSeqs reads the last sequence of each ledger bucket's stream.
func (e *exo) ledgerSeqs() map[string]uint64 {
	e.t.Helper()
	out := map[string]uint64{}
	for name, bucket := range map[string]string{"results": sfblocks.DefaultResultsBucket, "attempts": sfblocks.DefaultAttemptsBucket, "claims": DefaultClaimsBucket} {
		kv, err := e.js.KeyValue(context.Background(), bucket)
		if err != nil {
			e.t.Fatal(err)
		}
		st, err := kv.Status(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		out[name] = st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
	}
	return out
}

func sumAPICalls(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
