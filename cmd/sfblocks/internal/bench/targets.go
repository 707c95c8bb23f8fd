package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks/auth"
)

// A target is a NATS deployment the runs go to: the bench's embedded
// one-node server, or an external one (--nats-url: a cluster's nodes, with
// the workers' --replicas). With --compare-embedded a bench drives both,
// alternating within each round, so that the ratio external/embedded of a
// path is measured on the same machine at the same time.
type target struct {
	name     string
	url      string
	nc       *nats.Conn
	replicas int
	external bool
}

// setTargets sets the bench's targets from cfg: the embedded server alone,
// or the external NATS first and, with CompareEmbedded, the embedded one
// after it. The external NATS is reached with every URL, reconnecting
// forever; the bench's own account's token record there is removed, since
// it was sealed with another bench's key.
func (e *env) setTargets(ctx context.Context, cfg *Config) error {
	embedded := &target{name: "one-node", url: e.ns.ClientURL(), nc: e.nc, replicas: 1}
	if cfg == nil || cfg.NATSURL == "" {
		e.targets, e.cur = []*target{embedded}, embedded
		return nil
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("sfblocks-bench"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.Timeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("connect to --nats-url %s: %w (is it running? the bench starts only its embedded server)", redact(cfg.NATSURL), err)
	}
	ext := &target{name: fmt.Sprintf("external-R%d", cfg.Replicas), url: cfg.NATSURL, nc: nc, replicas: cfg.Replicas, external: true}
	e.targets = []*target{ext}
	if cfg.CompareEmbedded {
		e.targets = append(e.targets, embedded)
	}
	e.cur = ext
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if kv, err := js.KeyValue(kctx, auth.DefaultBucket); err == nil {
		for _, key := range []string{"token." + benchAccount, "lease." + benchAccount} {
			if err := kv.Purge(kctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("remove the bench account's old token record from %s on --nats-url: %w", auth.DefaultBucket, err)
			}
		}
	}
	return nil
}

// conn is the NATS connection of the run under way.
func (e *env) conn() *nats.Conn { return e.cur.nc }

// benchAccount is the account name in the workers' accounts config.
const benchAccount = "bench"

func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "***@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}
