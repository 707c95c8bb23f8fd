package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/worker"
)

const accountsSynopsis = `accounts check|reset [flags]

accounts check [flags]
  For every configured account: get an access token (through the same token
  store the workers use) and call Salesforce's /limits, then print whether
  auth works and the org's daily API usage. An account Salesforce refused in
  a way that may heal shows RETRYING with the time of the fleet's next try.
  Exits 1 when any account fails.

accounts reset ACCOUNT [flags]
  Clear ACCOUNT's refused state in the fleet's token store (see
  'sfblocks accounts reset -h').`

const accountsResetSynopsis = `accounts reset ACCOUNT [flags]

Clears ACCOUNT's refused state in the fleet's token store, on purpose: a
refresh token or consumer secret Salesforce refused for good (AUTH_FAILED),
or a refusal the fleet retries with backoff (AUTH_RETRYING). The next job of
any worker presents the credential again. Run it after fixing what made
Salesforce refuse (the app's policies or Run As user, a proxy), or to end a
backoff now. The stored tokens stay: to replace a revoked refresh token, run
'sfblocks authorize' instead.

When this key cannot open the stored record of a client_credentials account
(the fleet's key was lost), the record is replaced by an empty one sealed
with the current key: workers then fetch a new token with the consumer key
and secret. A web_server account's record holds its refresh token and is
never replaced here; authorize the account again.`

// accountCheck is one account's line of 'accounts check'.
type accountCheck struct {
	Account    string `json:"account"`
	Flow       string `json:"flow"`
	Default    bool   `json:"default"`
	AuthOK     bool   `json:"auth_ok"`
	Error      string `json:"error,omitempty"`
	ErrorCode  string `json:"error_code,omitempty"`
	Instance   string `json:"instance_url,omitempty"`
	APIUsed    int    `json:"api_used"`
	APIMax     int    `json:"api_max"`
	APIVersion string `json:"api_version"`
	// RetryAt is when the fleet next tries an account Salesforce refused
	// in a way that may heal (AUTH_RETRYING).
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

func runAccounts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reset" {
		return runAccountsReset(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "Usage: sfblocks "+accountsSynopsis)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	fs := newFlagSet("accounts check", accountsSynopsis, stderr)
	configPath := fs.String("config", envOr("SFBLOCKS_CONFIG", ""), "accounts config file (env SFBLOCKS_CONFIG); empty checks development mode's account 'dev' on the simulator of --sim-addr")
	simAddr := fs.String("sim-addr", envOr("SFBLOCKS_SIM_ADDR", "127.0.0.1:8443"), "without --config: where 'sfblocks serve' runs its simulator (env SFBLOCKS_SIM_ADDR)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	timeout := fs.Duration("timeout", 20*time.Second, "time allowed for each account")
	tokenDir := fs.String("token-dir", envOr("SFBLOCKS_TOKEN_DIR", ""), "token files directory (as given to authorize --token-dir)")
	noNATS := fs.Bool("no-nats", false, "do not use the fleet's token store; get a token from the config's credentials only")
	var conn worker.ConnConfig
	var natsURL string
	addConnFlags(fs, &conn, &natsURL)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	var cfg *auth.Config
	dev := *configPath == ""
	if dev {
		// As serve without --config: the development account on the
		// simulator. Its token is the simulator's client credentials,
		// fetched here; the fleet's token store is not needed for it.
		loginURL, err := devLoginURL(*simAddr)
		if err != nil {
			return err
		}
		cfg = devAccounts(loginURL)
		fmt.Fprintf(stderr, "no --config: checking development mode's account 'dev' on the simulator at %s (give --config FILE for real accounts)\n", loginURL)
	} else {
		var err error
		if cfg, err = loadAccounts(*configPath); err != nil {
			return err
		}
	}
	var store auth.Store = auth.NewMemoryStore()
	if !dev && (!*noNATS || *tokenDir != "") {
		s, closeStore, err := persistentStore(ctx, natsURL, conn, *tokenDir)
		if err != nil {
			return fmt.Errorf("%w (or run with --no-nats)", err)
		}
		defer closeStore()
		store = s
	}
	cache, err := auth.NewCache(cfg, auth.CacheOptions{Store: store})
	if err != nil {
		return err
	}
	var results []accountCheck
	failed := false
	for _, a := range cfg.Accounts {
		r := checkAccount(ctx, cache, a, *timeout)
		failed = failed || !r.AuthOK
		results = append(results, r)
	}
	if *asJSON {
		out, _ := json.MarshalIndent(results, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tFLOW\tAUTH\tAPI USAGE\tINSTANCE")
		for _, r := range results {
			name := r.Account
			if r.Default {
				name += " (default)"
			}
			authCol, usage := "ok", fmt.Sprintf("%d/%d (%.1f%%)", r.APIUsed, r.APIMax, pct(r.APIUsed, r.APIMax))
			if !r.AuthOK {
				authCol, usage = "FAILED "+r.ErrorCode+": "+r.Error, "-"
			}
			if r.RetryAt != nil {
				authCol = "RETRYING " + r.ErrorCode + " (next try " + r.RetryAt.Local().Format(time.TimeOnly) + "): " + r.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, r.Flow, authCol, usage, r.Instance)
		}
		tw.Flush()
	}
	if failed {
		return exitError{code: 1}
	}
	return nil
}

func checkAccount(ctx context.Context, cache *auth.Cache, a *auth.Account, timeout time.Duration) accountCheck {
	r := accountCheck{Account: a.Name, Flow: string(a.Flow), Default: a.Default, APIVersion: a.APIVersion}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(err error) accountCheck {
		r.Error = err.Error()
		r.ErrorCode = auth.CodeOf(err)
		var apiErr *salesforce.APIError
		if errors.As(err, &apiErr) {
			r.ErrorCode = apiErr.ErrorCode
		}
		return r
	}
	ts, err := cache.Source(a.Name)
	if err != nil {
		return fail(err)
	}
	tok, err := ts.Token(ctx)
	if err != nil {
		if st := ts.State(); !st.RetryAt.IsZero() {
			at := st.RetryAt.UTC()
			r.RetryAt = &at
		}
		return fail(err)
	}
	r.Instance, _ = tok.Extra("instance_url").(string)
	c, err := salesforce.New(ts, salesforce.WithAPIVersion(a.APIVersion))
	if err != nil {
		return fail(err)
	}
	lim, err := c.Limits(ctx)
	if err != nil {
		return fail(err)
	}
	r.AuthOK = true
	if d, ok := lim["DailyApiRequests"]; ok {
		r.APIMax, r.APIUsed = d.Max, d.Max-d.Remaining
	}
	if u, ok := c.Usage(); ok {
		r.APIUsed, r.APIMax = u.Used, u.Max
	}
	return r
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// runAccountsReset is 'accounts reset ACCOUNT'.
func runAccountsReset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("accounts reset", accountsResetSynopsis, stderr)
	configPath := fs.String("config", envOr("SFBLOCKS_CONFIG", ""), "accounts config file (env SFBLOCKS_CONFIG)")
	timeout := fs.Duration("timeout", 15*time.Second, "time allowed for the reset")
	tokenDir := fs.String("token-dir", envOr("SFBLOCKS_TOKEN_DIR", ""), "token files directory (as given to authorize --token-dir)")
	var conn worker.ConnConfig
	var natsURL string
	addConnFlags(fs, &conn, &natsURL)
	// ACCOUNT may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlagsThen(fs, args, &name); err != nil {
		return err
	}
	cfg, err := loadAccounts(*configPath)
	if err != nil {
		return err
	}
	acct, err := cfg.Account(name)
	if err != nil {
		return err
	}
	store, closeStore, err := persistentStore(ctx, natsURL, conn, *tokenDir)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := auth.ClearRefusal(ctx, store, acct.Name)
	switch {
	case auth.CodeOf(err) == auth.CodeTokenKey && acct.Flow == auth.FlowClientCredentials:
		// The record holds only an access token, which the consumer key
		// and secret can fetch again.
		if _, err := store.Put(ctx, acct.Name, &auth.Record{}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Account %q: this key cannot open its stored token, so it was replaced by an empty record sealed with this key.\nWorkers fetch a new token with the consumer key and secret; check with: sfblocks accounts check\n", acct.Name)
		return nil
	case err != nil:
		return err
	case r == nil:
		fmt.Fprintf(stdout, "Account %q has no refused credential; nothing to reset.\n", acct.Name)
		return nil
	}
	kind := fmt.Sprintf("being retried with backoff (AUTH_RETRYING, %d refusals)", r.Refusals)
	if r.Final {
		kind = "refused for good (AUTH_FAILED)"
	}
	fmt.Fprintf(stdout, "Account %q: cleared the refused credential, %s since %s:\n  %s\nThe next job presents it again; check with: sfblocks accounts check\n",
		acct.Name, kind, r.At.Local().Format(time.DateTime), r.Message)
	return nil
}

// parseFlagsThen parses flags around one positional argument: *name, if
// not given before the flags, is the first argument after them.
func parseFlagsThen(fs *flag.FlagSet, args []string, name *string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *name == "" && fs.NArg() > 0 {
		*name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
	}
	if *name == "" || fs.NArg() > 0 {
		fmt.Fprintln(fs.Output(), "give exactly one ACCOUNT")
		fs.Usage()
		return errUsage
	}
	return nil
}
