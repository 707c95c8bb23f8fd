package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestReplyPolicy(t *testing.T) {
	p := newReplyPolicy([]string{"_INBOX.>", "scenario.*.replies"}, "sfblocks")
	tests := []struct {
		subject string
		ok      bool
	}{
		{"_INBOX.abc.1", true},
		{"scenario.tenant1.replies", true},
		{"scenario.tenant1.replies.more", false},
		{"_INBOX", false},
		{"$KV.sfblocks_tokens.token.prod", false},
		{"$JS.API.STREAM.DELETE.SFBLOCKS_JOBS", false},
		{"$SYS.REQ.SERVER.PING", false},
		{"sfblocks.dlq.insert.x", false},
		{"sfblocks", false},
		{"other.subject", false},
		{"_INBOX.a..b", false},
		{"_INBOX.*", false},
		{"_INBOX.", false},
		{"scenario.tenant1", false},
		{"scenario..replies", false},
		{"scenario.a.replies.", false},
		{"x.scenario.a.replies", false},
	}
	for _, tt := range tests {
		if why := p.check(tt.subject); (why == "") != tt.ok {
			t.Errorf("check(%q) = %q, want allowed %v", tt.subject, why, tt.ok)
		}
	}
	// Patterns of every shape against subjects of every length.
	for _, tt := range []struct {
		pattern, subject string
		want             bool
	}{
		{">", "a", true}, {">", "a.b.c", true}, {"*", "a", true}, {"*", "a.b", false},
		{"a", "a", true}, {"a", "a.b", false}, {"a", "b", false}, {"a.b", "a", false},
		{"a.*", "a.b", true}, {"a.*", "a", false}, {"a.*", "a.b.c", false},
		{"a.>", "a", false}, {"a.>", "a.b", true}, {"a.>", "a.b.c", true}, {"a.>", "b.c", false},
		{"*.b.>", "a.b.c", true}, {"*.b.>", "a.b", false}, {"*.*", "a.b", true},
	} {
		if got := subjectMatch(strings.Split(tt.pattern, "."), tt.subject); got != tt.want {
			t.Errorf("subjectMatch(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
	for _, bad := range [][]string{nil, {"$KV.>"}, {"a.>.b"}, {""}, {"a."}, {".a"}, {"a b"}, {"a*"}} {
		if err := WithReplySubjects(bad...)(&config{}); err == nil {
			t.Errorf("WithReplySubjects(%q) accepted", bad)
		}
	}
}

// Jobs whose reply subjects aim at every JetStream subject the fleet uses,
// on both paths: none is run, none is answered, and afterwards no bucket or
// stream holds anything the replies wrote.
func TestRepliesNeverReachTheFleetsSubjects(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	m := newTestMetrics(t)
	e.worker(nil, exoFast, WithMetrics(m))
	ctx := context.Background()
	// The buckets other parts of the fleet create: tokens (auth) and status.
	for _, b := range []string{"sfblocks_tokens", sfblocks.DefaultStatusBucket} {
		kv, err := e.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "token.prod", []byte("sealed")); err != nil {
			t.Fatal(err)
		}
	}
	victim := sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "victim"}.Key()
	targets := []string{
		"$KV.sfblocks_tokens.token.prod",
		"$KV." + sfblocks.DefaultResultsBucket + "." + victim,
		"$KV." + sfblocks.DefaultAttemptsBucket + "." + victim,
		"$KV." + DefaultClaimsBucket + "." + victim,
		"$KV." + sfblocks.DefaultStatusBucket + ".token.prod",
		"$O." + DefaultPayloadsBucket + ".M.x",
		"$JS.API.STREAM.DELETE." + sfblocks.DefaultJobsStream,
		"$JS.API.STREAM.PURGE." + sfblocks.DefaultDLQStream,
		"$JS.API.CONSUMER.DELETE." + sfblocks.DefaultJobsStream + ".insert",
		sfblocks.DLQSubject(sfblocks.DefaultPrefix, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "victim"}),
		sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Insert),
		"not.an.inbox",
	}
	before := streamSeqs(t, e.js)
	for i, target := range targets {
		payload := []byte(fmt.Sprintf(`{"id":"hostile-%d","object":"Task","fields":{"Subject":"hostile"}}`, i))
		if err := e.nc.PublishRequest(sfblocks.Subject(sfblocks.DefaultPrefix, sfblocks.Insert), target, payload); err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Insert), Data: payload,
			Header: nats.Header{sfblocks.HeaderReplyTo: []string{target}}}
		if _, err := e.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	workertest.WaitFor(t, 10*time.Second, "every hostile job refused on both paths", func() bool {
		return counterValue(t, m.ReplyRefused.WithLabelValues(sfblocks.PathSync)) == float64(len(targets)) &&
			counterValue(t, m.ReplyRefused.WithLabelValues(sfblocks.PathDurable)) == float64(len(targets))
	})
	workertest.WaitFor(t, 10*time.Second, "an empty jobs stream", func() bool { return streamSeqs(t, e.js)["msgs:"+sfblocks.DefaultJobsStream] == 0 })

	after := streamSeqs(t, e.js)
	if _, ok := after[sfblocks.DefaultJobsStream]; !ok {
		t.Error("the jobs stream is gone")
	}
	if _, err := e.js.Consumer(ctx, sfblocks.DefaultJobsStream, "insert"); err != nil {
		t.Errorf("the insert consumer: %v", err)
	}
	for name, seq := range after {
		switch name {
		case "KV_sfblocks_tokens", "KV_" + sfblocks.DefaultStatusBucket, "KV_" + sfblocks.DefaultResultsBucket,
			"KV_" + sfblocks.DefaultAttemptsBucket, "KV_" + DefaultClaimsBucket:
			if seq != before[name] {
				t.Errorf("%s: last sequence %d -> %d: a reply was written into it", name, before[name], seq)
			}
		}
	}
	kv, _ := e.js.KeyValue(ctx, "sfblocks_tokens")
	if entry, err := kv.Get(ctx, "token.prod"); err != nil || string(entry.Value()) != "sealed" {
		t.Errorf("the stored token is now %v, %v", entry, err)
	}
	// The dead-letter stream holds the refusals (dead letters, not replies),
	// each filed apart from the job id it used.
	s, err := e.js.Stream(ctx, sfblocks.DefaultDLQStream)
	if err != nil {
		t.Fatalf("the dead-letter stream: %v", err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != uint64(len(targets)) {
		t.Errorf("dead letters = %d, want %d (one refusal per durable job)", info.State.Msgs, len(targets))
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var dl sfblocks.DeadLetter
		if json.Unmarshal(raw.Data, &dl) != nil || dl.Reason != sfblocks.ReasonReplyRefused || dl.Error.Code != sfblocks.CodeInvalidRequest {
			t.Errorf("dead letter %d = %s, want a reply_refused envelope", seq, raw.Data)
		}
	}
	if n := sumAPICalls(e.sim.Stats().APICalls); n != 0 {
		t.Errorf("the simulator saw %d calls: a refused job ran", n)
	}
}

// streamSeqs reads every stream's last sequence, and the jobs stream's
// message count under "msgs:<name>".
func streamSeqs(t *testing.T, js jetstream.JetStream) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	lister := js.ListStreams(context.Background())
	for info := range lister.Info() {
		out[info.Config.Name] = info.State.LastSeq
		out["msgs:"+info.Config.Name] = info.State.Msgs
	}
	return out
}
