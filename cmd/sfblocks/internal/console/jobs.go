package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
)

// maxJobID bounds the job id the Job page reads: ids are keys, and the
// workers refuse a job of more than 1 MiB anyway.
const maxJobID = 1024

// jobView is what the fleet holds of one job (one block).
type jobView struct {
	Identity sfblocks.JobIdentity
	Key      string
	// Result is the kept reply; ResultNote says why there is none, or why
	// it could not be read.
	Result     *sfblocks.Reply
	ResultJSON string
	ResultNote string
	Ledger     worker.JobLedger
	LedgerNote string
	DeadLetter *sfblocks.DeadLetter
	DLQNote    string
	// Nothing reports that no bucket or stream knows the job.
	Nothing bool
}

// jobPageData is the data of job.html.
type jobPageData struct {
	Block, Account, ID string
	Error              string
	Jobs               []jobView
}

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := jobPageData{Block: strings.TrimSpace(q.Get("block")), Account: q.Get("account"), ID: q.Get("id")}
	status := http.StatusOK
	switch {
	case data.Block != "" && !slices.Contains(sfblocks.Blocks(), sfblocks.Block(data.Block)):
		data.Error, status = fmt.Sprintf("block %q: choose search or insert, or leave it empty for both", trunc(40, data.Block)), http.StatusBadRequest
	case len(data.ID) > maxJobID || len(data.Account) > maxJobID:
		data.Error, status = fmt.Sprintf("the job id or account is longer than %d bytes, which no job has", maxJobID), http.StatusBadRequest
	case data.ID == "" && (data.Block != "" || data.Account != ""):
		data.Error, status = "give the job's id (the id field of the job, or the job id of its reply or dead letter)", http.StatusBadRequest
	}
	if data.Error != "" || data.ID == "" {
		c.render(w, r, status, "job", "Job", "job", data)
		return
	}
	blocks := sfblocks.Blocks()
	if data.Block != "" {
		blocks = []sfblocks.Block{sfblocks.Block(data.Block)}
	}
	// Every read has its own deadline, and they run at once: a bucket the
	// console's NATS user may not read (a refusal is a timeout) delays the
	// page by one deadline and spoils no other read.
	data.Jobs = make([]jobView, len(blocks))
	var wg sync.WaitGroup
	read := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := c.readCtx(r)
			defer cancel()
			f(ctx)
		}()
	}
	for i, b := range blocks {
		id := sfblocks.JobIdentity{Block: b, Account: data.Account, ID: data.ID}
		jv := &data.Jobs[i]
		jv.Identity, jv.Key = id, id.Key()
		read(func(ctx context.Context) {
			reply, err := c.client.Result(ctx, id)
			switch {
			case reply != nil:
				jv.Result = reply
				jv.ResultJSON = prettyJSON(mustJSON(reply))
			case errors.Is(err, client.ErrNoResult), errors.Is(err, jetstream.ErrBucketNotFound):
				jv.ResultNote = "No result is kept: the job has not finished, is unknown, or its result expired (kept 24 h by default). Synchronous searches are never kept."
			default:
				jv.ResultNote = "The kept result could not be read: " + readProblem(err, sfblocks.DefaultResultsBucket)
			}
		})
		read(func(ctx context.Context) {
			var err error
			if jv.Ledger, err = worker.ReadJobLedger(ctx, c.js, id, worker.LedgerBuckets{}); err != nil {
				jv.LedgerNote = "Attempts or lease could not be read: " + readProblem(err, sfblocks.DefaultAttemptsBucket+" and "+worker.DefaultClaimsBucket)
			}
		})
		read(func(ctx context.Context) {
			dl, err := c.client.DeadLetterOf(ctx, id)
			switch {
			case err == nil:
				jv.DeadLetter = dl
			case errors.Is(err, client.ErrNoDeadLetter), errors.Is(err, client.ErrNoDLQ):
			default:
				jv.DLQNote = "The dead letter could not be read: " + err.Error()
			}
		})
	}
	wg.Wait()
	for i := range data.Jobs {
		jv := &data.Jobs[i]
		jv.Nothing = jv.Result == nil && jv.Ledger.Attempts == nil && jv.Ledger.Claim == nil && jv.DeadLetter == nil &&
			jv.ResultNote != "" && !strings.HasPrefix(jv.ResultNote, "The kept result could not") && jv.LedgerNote == "" && jv.DLQNote == ""
	}
	c.render(w, r, http.StatusOK, "job", "Job "+trunc(40, data.ID), "job", data)
}

// readProblem says why a bucket could not be read, and what to do.
func readProblem(err error, bucket string) string {
	msg := err.Error()
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return msg + " (JetStream is off on this NATS server)"
	}
	// A read the NATS user may not make is refused with a permissions
	// violation, which a request sees as a timeout.
	if low := strings.ToLower(msg); strings.Contains(low, "permission") || strings.Contains(low, "timeout") || strings.Contains(low, "deadline") {
		return msg + ". The console's NATS user may not be allowed to read " + bucket +
			": the operator role of worker/deploy/nats-roles.conf does not read results, attempts or claims; give the console a user that may (see the README's Console section)."
	}
	return msg
}

// mustJSON encodes v, which is always encodable (a decoded reply).
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
