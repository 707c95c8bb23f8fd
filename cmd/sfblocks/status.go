package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/worker"
)

// statusAccount is what a worker reports of one account: its in-process
// breaker, token and API usage, never a Salesforce call.
type statusAccount struct {
	name    string
	breaker *breaker.Breaker
	token   *auth.TokenSource
	client  *salesforce.Client
	budget  *worker.Budget
}

func (a statusAccount) status() worker.AccountStatus {
	tok := a.token.State()
	st := worker.AccountStatus{Account: a.name, Breaker: a.breaker.State().String(),
		Token: worker.TokenStatus{State: tok.State, IssuedAt: tok.IssuedAt, ErrorCode: tok.ErrorCode, RetryAt: tok.RetryAt}}
	if until, ok := a.breaker.OpenUntil(); ok {
		u := until.UTC()
		st.BreakerOpenUntil = &u
	}
	if u, ok := a.client.Usage(); ok {
		st.APIUsed, st.APIMax = u.Used, u.Max
	}
	if a.budget != nil {
		// The fleet's latest reading, which may be another worker's.
		b := a.budget.State(a.name)
		if b.Max > 0 {
			st.APIUsed, st.APIMax = b.Used, b.Max
		}
		st.APIReserveFrom = b.ReserveFrom
		st.Budget = "ok"
		switch {
		case b.Max == 0:
			st.Budget = ""
		case b.Exhausted():
			st.Budget = "exhausted"
		case b.InReserve:
			st.Budget = "reserve"
		}
	}
	return st
}

// collectStatus returns the reporter's collect function for accounts.
func collectStatus(accounts []statusAccount) func() []worker.AccountStatus {
	return func() []worker.AccountStatus {
		out := make([]worker.AccountStatus, len(accounts))
		for i, a := range accounts {
			out[i] = a.status()
		}
		return out
	}
}

const statusSynopsis = `status [flags]

Shows, for every account and every running worker, the circuit breaker's
state, the token state and the org's API usage (and whether it is in the
reserve kept for synchronous jobs, when durable jobs wait), as the workers
last reported them (every 5 s).`

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
	statuses, err := worker.ReadStatus(ctx, js, worker.StatusConfig{})
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
		if !s.Token.RetryAt.IsZero() {
			tok += " next try " + s.Token.RetryAt.Local().Format(time.TimeOnly)
		}
		usage := "-"
		if s.APIMax > 0 {
			usage = fmt.Sprintf("%d/%d (%.1f%%)", s.APIUsed, s.APIMax, pct(s.APIUsed, s.APIMax))
		}
		switch s.Budget {
		case "reserve":
			usage += fmt.Sprintf(" IN RESERVE from %d: durable jobs wait", s.APIReserveFrom)
		case "exhausted":
			usage += " EXHAUSTED: durable jobs wait, Salesforce refuses the rest"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\n", s.Account, s.Worker, br, tok, usage, time.Since(s.UpdatedAt).Round(time.Second))
	}
	return tw.Flush()
}
