package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker"
)

const fleetSynopsis = `fleet check|apply [flags]

The fleet's JetStream settings (the jobs and dead-letter streams, the
consumers, the results, attempts and claims buckets) have one owner: the
operator. Workers create what is missing but never change what exists; a
worker whose flags disagree logs the differences and runs with the fleet's.

  fleet check   compare the fleet's settings with the given flags and list
                every difference (exit 1 when there is one)
  fleet apply   create or update the fleet's settings to match the given
                flags; running workers keep their view until they restart

The flags are serve's durable flags (--ack-wait, --max-ack-pending,
--duplicate-window, ...), --prefix and --max-in-flight.`

func runFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "apply") {
		fmt.Fprintln(stderr, "Usage: sfblocks "+fleetSynopsis)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	fs := newFlagSet("fleet "+args[0], fleetSynopsis, stderr)
	var conn worker.ConnConfig
	var natsURL string
	addConnFlags(fs, &conn, &natsURL)
	var d durableFlags
	d.addFlags(fs)
	prefix := fs.String("prefix", envOr("SFBLOCKS_PREFIX", sfblocks.DefaultPrefix), "subject prefix (env SFBLOCKS_PREFIX)")
	maxInFlight := fs.Int("max-in-flight", envInt("SFBLOCKS_MAX_IN_FLIGHT", worker.DefaultMaxInFlight), "jobs one worker runs at once, from which --max-ack-pending's default derives (env SFBLOCKS_MAX_IN_FLIGHT)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	conn.URLs = strings.Split(natsURL, ",")
	conn.Name = "sfblocks-fleet"
	nc, err := worker.Connect(conn)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if args[0] == "apply" {
		changed, err := worker.ApplyFleet(ctx, js, *prefix, d.cfg, *maxInFlight)
		for _, c := range changed {
			fmt.Fprintln(stdout, c)
		}
		if err == nil && len(changed) == 0 {
			fmt.Fprintln(stdout, "the fleet's settings already match; nothing changed")
		}
		return err
	}
	diffs, err := worker.CheckFleet(ctx, js, *prefix, d.cfg, *maxInFlight)
	if err != nil {
		return fmt.Errorf("%w (has a worker with the durable path started on this prefix? 'sfblocks fleet apply' creates the settings)", err)
	}
	for _, x := range diffs {
		fmt.Fprintln(stdout, x.String())
	}
	if len(diffs) > 0 {
		fmt.Fprintf(stdout, "%d differences; 'sfblocks fleet apply' with these flags makes the fleet match them\n", len(diffs))
		return exitError{code: 1}
	}
	fmt.Fprintln(stdout, "the fleet's settings match these flags")
	return nil
}
