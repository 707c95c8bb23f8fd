package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/bench"
)

// bench-baseline is a hidden command (not in the usage): the bare
// responder that bench starts as a separate process of this binary, so
// that it and the workers are measured alike (CPU, peak RSS). What it does
// is bench.ServeBaseline's.
const benchBaselineSynopsis = `bench-baseline [flags]

Internal to 'sfblocks bench': a bare NATS responder that makes the same
Salesforce calls as the worker with none of its machinery. Prints "ready"
on stdout once subscribed.`

func runBenchBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := bench.DefaultBaselineConfig()
	fs := newFlagSet("bench-baseline", benchBaselineSynopsis, stderr)
	fs.StringVar(&cfg.NATSURL, "nats-url", cfg.NATSURL, "NATS server URL")
	fs.StringVar(&cfg.InstanceURL, "instance-url", cfg.InstanceURL, "the org's My Domain URL (client credentials token endpoint and REST host)")
	fs.StringVar(&cfg.ClientID, "client-id", cfg.ClientID, "consumer key; the secret comes from env "+bench.EnvSecret)
	fs.StringVar(&cfg.Prefix, "prefix", cfg.Prefix, "subject prefix")
	fs.StringVar(&cfg.QueueGroup, "queue-group", cfg.QueueGroup, "queue group")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", cfg.MaxInFlight, "jobs run at once")
	fs.StringVar(&cfg.APIVersion, "api-version", cfg.APIVersion, "REST API version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	cfg.ClientSecret = os.Getenv(bench.EnvSecret)
	return bench.ServeBaseline(ctx, cfg, stdout)
}
