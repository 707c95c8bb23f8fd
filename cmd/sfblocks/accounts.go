package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/worker"
)

const accountsSynopsis = `accounts check [flags]

For every configured account: get an access token (through the same token
store the workers use) and call Salesforce's /limits, then print whether auth
works and the org's daily API usage. Exits 1 when any account fails.`

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
}

func runAccounts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "Usage: sfblocks "+accountsSynopsis)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	fs := newFlagSet("accounts check", accountsSynopsis, stderr)
	configPath := fs.String("config", envOr("SFBLOCKS_CONFIG", ""), "accounts config file (env SFBLOCKS_CONFIG)")
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
	cfg, err := loadAccounts(*configPath)
	if err != nil {
		return err
	}
	var store auth.Store = auth.NewMemoryStore()
	if !*noNATS || *tokenDir != "" {
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
