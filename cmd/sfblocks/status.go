package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/worker"
)

// Each worker writes its view of every account to this KV bucket; entries
// of a worker that stopped expire after statusTTL.
const (
	statusBucket   = "sfblocks_status"
	statusInterval = 5 * time.Second
	statusTTL      = 30 * time.Second
)

// accountStatus is one account's health as one worker sees it.
type accountStatus struct {
	Account          string          `json:"account"`
	Worker           string          `json:"worker"`
	Breaker          string          `json:"breaker"`
	BreakerOpenUntil *time.Time      `json:"breaker_open_until,omitempty"`
	Token            auth.TokenState `json:"token"`
	APIUsed          int             `json:"api_used"`
	APIMax           int             `json:"api_max"`
	UpdatedAt        time.Time       `json:"updated_at"`
}

// statusAccount is what the reporter reads of one account.
type statusAccount struct {
	name    string
	breaker *breaker.Breaker
	token   *auth.TokenSource
	client  *salesforce.Client
}

func (a statusAccount) status(worker string, now time.Time) accountStatus {
	st := accountStatus{Account: a.name, Worker: worker, Breaker: a.breaker.State().String(), Token: a.token.State(), UpdatedAt: now.UTC()}
	if until, ok := a.breaker.OpenUntil(); ok {
		u := until.UTC()
		st.BreakerOpenUntil = &u
	}
	if u, ok := a.client.Usage(); ok {
		st.APIUsed, st.APIMax = u.Used, u.Max
	}
	return st
}

// reportStatus writes every account's status to the status bucket now and
// every statusInterval until ctx ends. It never makes a Salesforce call.
func reportStatus(ctx context.Context, js jetstream.JetStream, workerID string, accounts []statusAccount, log zerolog.Logger) error {
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	kv, err := js.CreateOrUpdateKeyValue(kctx, jetstream.KeyValueConfig{
		Bucket: statusBucket, Description: "sfblocks: each worker's view of each account (sfblocks status)",
		TTL: statusTTL, History: 1, Storage: jetstream.MemoryStorage,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("status bucket: %w", err)
	}
	put := func() {
		now := time.Now()
		for _, a := range accounts {
			data, _ := json.Marshal(a.status(workerID, now))
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := kv.Put(pctx, a.name+"."+workerID, data); err != nil && ctx.Err() == nil {
				log.Debug().Err(err).Str("account", a.name).Msg("writing status")
			}
			cancel()
		}
	}
	go func() {
		put()
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				// Remove this worker's entries so status shows only live workers.
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				for _, a := range accounts {
					_ = kv.Delete(dctx, a.name+"."+workerID)
				}
				cancel()
				return
			case <-t.C:
				put()
			}
		}
	}()
	return nil
}

const statusSynopsis = `status [flags]

Shows, for every account and every running worker, the circuit breaker's
state, the token state and the org's API usage, as the workers last reported
them (every 5 s).`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusSynopsis, stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var conn worker.ConnConfig
	var natsURL string
	addConnFlags(fs, &conn, &natsURL)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	conn.URLs = strings.Split(natsURL, ",")
	conn.Name = "sfblocks-cli"
	nc, err := worker.Connect(conn)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	statuses, err := readStatus(ctx, js)
	if err != nil {
		return err
	}
	if *asJSON {
		out, _ := json.MarshalIndent(statuses, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return nil
	}
	if len(statuses) == 0 {
		fmt.Fprintln(stdout, "no worker has reported yet (is 'sfblocks serve' running on this NATS server?)")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tWORKER\tBREAKER\tTOKEN\tAPI USAGE\tREPORTED")
	for _, s := range statuses {
		br := s.Breaker
		if s.BreakerOpenUntil != nil {
			br += " until " + s.BreakerOpenUntil.Local().Format(time.TimeOnly)
		}
		tok := s.Token.State
		if s.Token.ErrorCode != "" {
			tok += " (" + s.Token.ErrorCode + ")"
		}
		usage := "-"
		if s.APIMax > 0 {
			usage = fmt.Sprintf("%d/%d (%.1f%%)", s.APIUsed, s.APIMax, pct(s.APIUsed, s.APIMax))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\n", s.Account, s.Worker, br, tok, usage, time.Since(s.UpdatedAt).Round(time.Second))
	}
	return tw.Flush()
}

// readStatus returns every reported status, sorted by account and worker.
func readStatus(ctx context.Context, js jetstream.JetStream) ([]accountStatus, error) {
	kv, err := js.KeyValue(ctx, statusBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []accountStatus
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // expired or deleted since the listing
		}
		var s accountStatus
		if json.Unmarshal(e.Value(), &s) == nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Worker < out[j].Worker
	})
	return out, nil
}
