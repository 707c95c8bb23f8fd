package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
)

// BaselineConfig is everything the baseline responder (the hidden
// `sfblocks bench-baseline` command) can be told. Start from
// [DefaultBaselineConfig] and set InstanceURL and ClientSecret.
type BaselineConfig struct {
	// NATSURL is the NATS server to serve on. Default:
	// worker.DefaultNATSURL.
	NATSURL string
	// InstanceURL is the org's My Domain URL: its client credentials token
	// endpoint and REST host. Required; no default.
	InstanceURL string
	// ClientID is the consumer key. Default: the simulator's
	// (sfsim.DefaultClientID).
	ClientID string
	// ClientSecret is the consumer secret; the command reads it from env
	// [EnvSecret]. Default: "".
	ClientSecret string
	// Prefix is the subject prefix: jobs arrive on PREFIX.search and
	// PREFIX.insert, as for the worker. Default: sfblocks.DefaultPrefix.
	Prefix string
	// QueueGroup is the queue group, as for the worker. Default:
	// worker.DefaultQueueGroup.
	QueueGroup string
	// MaxInFlight is how many jobs run at once. Default:
	// worker.DefaultMaxInFlight (256).
	MaxInFlight int
	// APIVersion is the Salesforce REST API version. Default:
	// salesforce.DefaultAPIVersion.
	APIVersion string
}

// DefaultBaselineConfig returns the defaults documented on
// [BaselineConfig]'s fields.
func DefaultBaselineConfig() BaselineConfig {
	return BaselineConfig{
		NATSURL:     worker.DefaultNATSURL,
		ClientID:    sfsim.DefaultClientID,
		Prefix:      sfblocks.DefaultPrefix,
		QueueGroup:  worker.DefaultQueueGroup,
		MaxInFlight: worker.DefaultMaxInFlight,
		APIVersion:  salesforce.DefaultAPIVersion,
	}
}

// Validate reports a setting [ServeBaseline] cannot start with.
func (c BaselineConfig) Validate() error {
	if c.InstanceURL == "" || c.MaxInFlight < 1 {
		return errors.New("--instance-url and a positive --max-in-flight are required")
	}
	return nil
}

// ServeBaseline runs the baseline, the yardstick of the bench: the least a
// NATS responder must do to serve the same jobs against the same
// Salesforce. It takes the same requests on the same subjects and queue
// group, pastes the variables into the statement (or the fields) without
// validating or escaping anything, makes the same HTTP call with a token
// fetched once at start and the worker's connection pool settings, and
// replies with Salesforce's raw body. No token cache, breaker, retries,
// logging or metrics. Its in-flight limit works like the worker's (the
// subscription callback waits for a slot), so both are compared at the
// same concurrency.
//
// It writes "ready" and a newline to ready once subscribed, then serves
// until ctx ends.
func ServeBaseline(ctx context.Context, cfg BaselineConfig, ready io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The worker's pool settings, nothing else of it, over HTTP/1.1 as
	// net/http calls an http:// URL by default: one connection per call in
	// flight (the worker speaks cleartext HTTP/2 to the simulator).
	hc := salesforce.HTTP1Client()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	token, instanceURL, err := baselineToken(tctx, hc, cfg.InstanceURL, cfg.ClientID, cfg.ClientSecret)
	cancel()
	if err != nil {
		return err
	}
	b := &baseline{hc: hc, auth: "Bearer " + token, base: instanceURL + "/services/data/v" + cfg.APIVersion}

	nc, err := nats.Connect(cfg.NATSURL, nats.Name("sfblocks-bench-baseline"), nats.Timeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s (is the server up? set --nats-url): %w", cfg.NATSURL, err)
	}
	defer nc.Close()
	sem := make(chan struct{}, cfg.MaxInFlight)
	for block, handle := range map[string]func(context.Context, []byte) (int, []byte){"search": b.search, "insert": b.insert} {
		subject := cfg.Prefix + "." + block
		sub, err := nc.QueueSubscribe(subject, cfg.QueueGroup, func(m *nats.Msg) {
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
			return fmt.Errorf("subscribe to %s (check --prefix and --queue-group): %w", subject, err)
		}
		// Room for a burst of jobs while every slot is busy: the
		// worker's default pending limits.
		if err := sub.SetPendingLimits(worker.DefaultPendingMsgs, worker.DefaultPendingBytes); err != nil {
			return fmt.Errorf("set the pending limits of %s: %w", subject, err)
		}
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("flush the subscriptions to NATS: %w", err)
	}
	fmt.Fprintln(ready, "ready")
	<-ctx.Done()
	return nil
}

// baselineToken gets one access token with the client credentials flow.
func baselineToken(ctx context.Context, hc *http.Client, myDomain, clientID, secret string) (token, instanceURL string, err error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, myDomain+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", fmt.Errorf("token request to %q (check --instance-url): %w", myDomain, err)
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
		return "", "", fmt.Errorf("token request answered %s (check the client id and %s)", res.Status, EnvSecret)
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

// call makes one REST call and returns its status and raw body; a call
// that got no answer maps to the status a gateway would give.
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
