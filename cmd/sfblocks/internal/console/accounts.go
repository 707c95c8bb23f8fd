package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
)

// accountView is one account on the Accounts page: its state across the
// workers that report it, worst first, and each worker's own report.
type accountView struct {
	Name string
	// Breaker is the worst breaker state any worker reports; OpenUntil the
	// earliest time an open breaker probes again.
	Breaker   string
	OpenUntil time.Time
	// Token is the worst token state, with its error code and retry time.
	Token     string
	TokenCode string
	RetryAt   time.Time
	// Fixes say what to do about the states above; none when healthy.
	Fixes []string
	// APIUsed, APIMax, ReserveFrom and Budget are the freshest reading.
	APIUsed, APIMax, ReserveFrom int
	Budget                       string
	Gauge                        template.HTML
	// Reading is the fleet's shared reading in the budget bucket, when the
	// console may read it.
	Reading *worker.BudgetReading
	Reports []worker.AccountStatus
}

// accountsPageData is the data of accounts.html.
type accountsPageData struct {
	Accounts []accountView
	Workers  int // workers that report accounts
	// DLQ is the dead-letter stream, nil when there is none (yet) or it
	// cannot be read (DLQErr).
	DLQ      *client.DLQInfo
	DLQErr   string
	BudgetEr string
}

var breakerRank = map[string]int{"closed": 0, "half-open": 1, "open": 2}
var tokenRank = map[string]int{"valid": 0, "none": 1, "rejected": 2, "retrying": 3, "failed": 4}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request) {
	// Three reads, each with its own deadline, at once: one the console's
	// NATS user may not make (a refusal is a timeout) delays the page by
	// one deadline and spoils no other.
	var (
		statuses          []worker.AccountStatus
		readings          []worker.BudgetReading
		info              *client.DLQInfo
		stErr, bErr, dErr error
		wg                sync.WaitGroup
	)
	read := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := c.readCtx(r)
			defer cancel()
			f(ctx)
		}()
	}
	read(func(ctx context.Context) { statuses, stErr = worker.ReadStatus(ctx, c.js, worker.StatusConfig{}) })
	read(func(ctx context.Context) { readings, bErr = worker.ReadBudget(ctx, c.js, "") })
	read(func(ctx context.Context) { info, dErr = c.client.DLQInfo(ctx) })
	wg.Wait()
	if stErr != nil {
		c.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Could not read the workers' status bucket: %v. Check that NATS is reachable and that the console's NATS user may read %s (the operator role may).", stErr, sfblocks.DefaultStatusBucket))
		return
	}
	data := accountsPageData{}
	if bErr != nil {
		data.BudgetEr = fmt.Sprintf("The fleet's budget bucket could not be read (%v): usage below is what each worker last reported. The console's NATS user needs to read %s (the operator role of worker/deploy/nats-roles.conf may).", bErr, worker.DefaultBudgetBucket)
	}
	byReading := map[string]*worker.BudgetReading{}
	for i := range readings {
		byReading[readings[i].Account] = &readings[i]
	}
	byName := map[string]*accountView{}
	workers := map[string]bool{}
	for _, st := range statuses {
		workers[st.Worker] = true
		a := byName[st.Account]
		if a == nil {
			a = &accountView{Name: st.Account, Breaker: st.Breaker, Token: st.Token.State}
			byName[st.Account] = a
		}
		a.Reports = append(a.Reports, st)
		if breakerRank[st.Breaker] > breakerRank[a.Breaker] {
			a.Breaker = st.Breaker
		}
		if st.BreakerOpenUntil != nil && (a.OpenUntil.IsZero() || st.BreakerOpenUntil.Before(a.OpenUntil)) {
			a.OpenUntil = *st.BreakerOpenUntil
		}
		if tokenRank[st.Token.State] >= tokenRank[a.Token] {
			a.Token, a.TokenCode, a.RetryAt = st.Token.State, st.Token.ErrorCode, st.Token.RetryAt
		}
		if st.APIMax > 0 && st.APIUsed >= a.APIUsed {
			a.APIUsed, a.APIMax, a.ReserveFrom, a.Budget = st.APIUsed, st.APIMax, st.APIReserveFrom, st.Budget
		}
	}
	for _, a := range byName {
		if rd := byReading[a.Name]; rd != nil {
			a.Reading = rd
			if a.APIMax == 0 {
				a.APIUsed, a.APIMax = rd.Used, rd.Max
			}
		}
		a.Gauge = budgetGauge(a.APIUsed, a.APIMax, a.ReserveFrom, a.Budget)
		a.Fixes = fixes(a)
		data.Accounts = append(data.Accounts, *a)
	}
	sort.Slice(data.Accounts, func(i, j int) bool { return data.Accounts[i].Name < data.Accounts[j].Name })
	data.Workers = len(workers)
	switch {
	case errors.Is(dErr, client.ErrNoDLQ):
	case dErr != nil:
		data.DLQErr = dErr.Error()
	default:
		data.DLQ = info
	}
	c.render(w, r, http.StatusOK, "accounts", "Accounts", "accounts", data)
}

// fixes says what to do about an account's state.
func fixes(a *accountView) []string {
	var out []string
	switch a.Breaker {
	case "open":
		out = append(out, fmt.Sprintf("The circuit breaker is open: this account's Salesforce calls fail at once (SALESFORCE_UNAVAILABLE, retryable) until %s, when it lets probe calls through. Durable jobs are parked meanwhile and resume by themselves.", when(a.OpenUntil)))
	case "half-open":
		out = append(out, "The circuit breaker is probing Salesforce: a few calls go through; successes close it, a failure opens it again.")
	}
	switch a.TokenCode {
	case "":
	case auth.CodeAuthFailed:
		out = append(out, fmt.Sprintf("Salesforce refused the credential for good (AUTH_FAILED: a revoked or expired refresh token, a wrong consumer key or secret). Run `sfblocks authorize --account %s` again for a web_server account, or fix the account's config; then replay its dead letters (code AUTH_FAILED).", a.Name))
	case auth.CodeNotAuthorized:
		out = append(out, fmt.Sprintf("The account has no refresh token yet (NOT_AUTHORIZED): run `sfblocks authorize --account %s` once.", a.Name))
	case auth.CodeAuthRetrying:
		out = append(out, fmt.Sprintf("Salesforce refused the credential in a way that may heal by itself (AUTH_RETRYING: an app policy still propagating, a proxy's 403). The fleet tries again at %s; after fixing the cause, `sfblocks accounts reset %s` tries at once.", when(a.RetryAt), a.Name))
	case auth.CodeUnavailable:
		out = append(out, "The token endpoint or the fleet's token store could not be reached (AUTH_UNAVAILABLE); the next job tries again.")
	case auth.CodeTokenKey:
		out = append(out, "A worker cannot open the fleet's stored tokens (TOKEN_KEY_MISMATCH): give it the fleet's SFBLOCKS_TOKEN_KEY (see the README's key rotation), then replay the dead letters with code AUTH_FAILED.")
	default:
		out = append(out, fmt.Sprintf("The last token request failed with %s: see the workers' logs for the account, and fix its config.", a.TokenCode))
	}
	switch a.Budget {
	case "reserve":
		out = append(out, fmt.Sprintf("API usage is in the reserve kept for synchronous jobs (from %s of %s): durable jobs of this account wait, parked, until usage falls below it; synchronous jobs go on.", num(a.ReserveFrom), num(a.APIMax)))
	case "exhausted":
		out = append(out, "The org's daily API allocation is spent: Salesforce refuses calls (RATE_LIMITED) until its rolling 24-hour usage falls. Durable jobs wait.")
	}
	return out
}
