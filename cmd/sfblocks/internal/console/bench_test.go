package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/client"
)

// benchDeadLetters is the size of the benchmarks' dead-letter stream.
const benchDeadLetters = 5000

// fillDLQ stores n dead letters of Contact Inserts refused with
// REQUIRED_FIELD_MISSING, as a worker stores them, and waits for them.
func fillDLQ(tb testing.TB, f *fleet, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		id := fmt.Sprintf("bench-%05d", i)
		payload, _ := json.Marshal(map[string]any{"id": id, "object": "Contact", "fields": map[string]any{"FirstName": "Bench", "Phone": "+1 415 555 0100"}})
		dl := sfblocks.DeadLetter{JobID: id, Block: sfblocks.Insert, Account: "sim", Path: sfblocks.PathDurable, Reason: sfblocks.ReasonPermanent,
			Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Insert), Payload: payload, Attempts: 1,
			Error:      sfblocks.ErrorInfo{Code: sfblocks.CodeSalesforceError, SalesforceCode: "REQUIRED_FIELD_MISSING", Message: "required fields are missing: [LastName]"},
			ResultCode: 400, ResultBody: `[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]`}
		data, _ := json.Marshal(dl)
		subject := sfblocks.DLQSubject(sfblocks.DefaultPrefix, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: id})
		if _, err := f.js.PublishAsync(subject, data); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-f.js.PublishAsyncComplete():
	case <-ctx.Done():
		tb.Fatal("the dead letters were not stored within a minute")
	}
	if info, err := f.client.DLQInfo(ctx); err != nil || info.Messages != uint64(n) {
		tb.Fatalf("DLQ: %+v, %v; want %d dead letters", info, err, n)
	}
}

// What one look at the dead letters costs with 5,000 of them: the list
// (every dead letter read to count and page them, 50 rendered), the list
// filtered, one envelope, and the state its refresh asks every 5 s.
//
//	go test -run '^$' -bench DeadLetterPages -benchtime 20x ./cmd/sfblocks/internal/console/
func BenchmarkDeadLetterPages(b *testing.B) {
	f := newFleet(b, fleetOptions{})
	fillDLQ(b, f, benchDeadLetters)
	f.login(b)
	dls, err := f.client.ListDeadLetters(context.Background(), client.DLQFilter{Limit: 1})
	if err != nil || len(dls) != 1 {
		b.Fatal(dls, err)
	}
	pages := []struct{ name, path, want string }{
		{"list", "/dlq", "5,000</span></strong> dead letters in all"},
		{"filtered", "/dlq?sf_code=REQUIRED_FIELD_MISSING&since=1h", "5,000</span></strong> of 5,000 match"},
		{"one", fmt.Sprintf("/dlq/%d", dls[0].Seq), "Required fields are missing"},
		{"state", "/dlq/state", fmt.Sprintf(`"%d:%d"`, benchDeadLetters, benchDeadLetters)},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				code, body := f.get(b, p.path)
				if code != http.StatusOK || !strings.Contains(body, p.want) {
					b.Fatalf("%s: %d, want %q\n%s", p.path, code, p.want, body)
				}
			}
		})
	}
}
