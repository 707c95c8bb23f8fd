package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
)

// envBenchSecret carries the simulator's consumer secret to the processes
// `sfblocks bench` starts, so it is on no command line.
const envBenchSecret = "SFBLOCKS_BENCH_SECRET"

// The baseline is the yardstick of `sfblocks bench`: the least a NATS
// responder must do to serve the same jobs against the same Salesforce. It
// takes the same request on the same subjects and queue group, pastes the
// variables into the statement (or the fields) without validating or
// escaping anything, makes the same HTTP call with a token fetched once at
// start and a shared connection pool, and replies with Salesforce's raw
// body. No token cache, breaker, retries, logging or metrics. Its in-flight
// limit works like the worker's (the subscription callback waits for a
// slot), so both are compared at the same concurrency.
//
// It is a hidden command (not in the usage) that bench starts as a separate
// process, so the two are measured alike (CPU, peak RSS).
const benchBaselineSynopsis = `bench-baseline [flags]

Internal to 'sfblocks bench': a bare NATS responder that makes the same
Salesforce calls as the worker with none of its machinery. Prints "ready"
on stdout once subscribed.`

func runBenchBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench-baseline", benchBaselineSynopsis, stderr)
	natsURL := fs.String("nats-url", worker.DefaultNATSURL, "NATS server URL")
	instance := fs.String("instance-url", "", "the org's My Domain URL (client credentials token endpoint and REST host)")
	clientID := fs.String("client-id", sfsim.DefaultClientID, "consumer key; the secret comes from env "+envBenchSecret)
	prefix := fs.String("prefix", sfblocks.DefaultPrefix, "subject prefix")
	group := fs.String("queue-group", worker.DefaultQueueGroup, "queue group")
	maxInFlight := fs.Int("max-in-flight", worker.DefaultMaxInFlight, "jobs run at once")
	apiVersion := fs.String("api-version", salesforce.DefaultAPIVersion, "REST API version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *instance == "" || *maxInFlight < 1 {
		fmt.Fprintln(stderr, "--instance-url and a positive --max-in-flight are required")
		return errUsage
	}
	hc := salesforce.SharedHTTPClient() // the worker's pool settings, nothing else of it
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	token, instanceURL, err := baselineToken(tctx, hc, *instance, *clientID, os.Getenv(envBenchSecret))
	cancel()
	if err != nil {
		return err
	}
	b := &baseline{hc: hc, auth: "Bearer " + token, base: instanceURL + "/services/data/v" + *apiVersion}

	nc, err := nats.Connect(*natsURL, nats.Name("sfblocks-bench-baseline"))
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	sem := make(chan struct{}, *maxInFlight)
	for block, handle := range map[string]func(context.Context, []byte) (int, []byte){"search": b.search, "insert": b.insert} {
		sub, err := nc.QueueSubscribe(*prefix+"."+block, *group, func(m *nats.Msg) {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				jctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				status, body := handle(jctx, m.Data)
				cancel()
				reply := &nats.Msg{Subject: m.Reply, Data: body}
				if status >= 300 || status == 0 {
					// The same signal of failure as the worker's micro
					// error header, so the load generator counts alike.
					reply.Header = nats.Header{"Nats-Service-Error-Code": {strconv.Itoa(max(status, 500))}}
				}
				_ = m.RespondMsg(reply)
			}()
		})
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if err := sub.SetPendingLimits(16*worker.DefaultMaxInFlight, 64<<20); err != nil {
			return err
		}
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	return nil
}

// baselineToken gets one access token with the client credentials flow.
func baselineToken(ctx context.Context, hc *http.Client, myDomain, clientID, secret string) (token, instanceURL string, err error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, myDomain+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("token request: %w", err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", "", fmt.Errorf("token request answered %s (check the client id and %s)", res.Status, envBenchSecret)
	}
	return tok.AccessToken, tok.InstanceURL, nil
}

// baseline makes the bare HTTP calls.
type baseline struct {
	hc   *http.Client
	auth string
	base string // instance URL + /services/data/vXX.X
}

// paste replaces each $(name) in s with the variable's value, unescaped.
func paste(s string, vars map[string]any) string {
	for k, v := range vars {
		var val string
		switch v := v.(type) {
		case string:
			val = v
		default:
			val = fmt.Sprint(v)
		}
		s = strings.ReplaceAll(s, "$("+k+")", val)
	}
	return s
}

func (b *baseline) search(ctx context.Context, data []byte) (int, []byte) {
	var job struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.Unmarshal(data, &job); err != nil {
		return 400, []byte(err.Error())
	}
	return b.call(ctx, http.MethodGet, b.base+"/query?q="+url.QueryEscape(paste(job.Query, job.Variables)), nil)
}

func (b *baseline) insert(ctx context.Context, data []byte) (int, []byte) {
	var job struct {
		Object     string         `json:"object"`
		Fields     map[string]any `json:"fields"`
		Variables  map[string]any `json:"variables"`
		ExternalID *struct {
			Field string `json:"field"`
			Value string `json:"value"`
		} `json:"external_id"`
	}
	if err := json.Unmarshal(data, &job); err != nil {
		return 400, []byte(err.Error())
	}
	for k, v := range job.Fields {
		if s, ok := v.(string); ok {
			job.Fields[k] = paste(s, job.Variables)
		}
	}
	body, _ := json.Marshal(job.Fields)
	if job.ExternalID != nil {
		return b.call(ctx, http.MethodPatch, b.base+"/sobjects/"+job.Object+"/"+job.ExternalID.Field+"/"+
			url.PathEscape(paste(job.ExternalID.Value, job.Variables)), body)
	}
	return b.call(ctx, http.MethodPost, b.base+"/sobjects/"+job.Object, body)
}

func (b *baseline) call(ctx context.Context, method, u string, body []byte) (int, []byte) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 500, []byte(err.Error())
	}
	req.Header.Set("Authorization", b.auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := b.hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 504, []byte("timeout")
		}
		return 503, []byte("unreachable")
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return 503, []byte("read error")
	}
	return res.StatusCode, out
}
