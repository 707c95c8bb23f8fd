// Command sfblocks executes contact-center scenario blocks (Salesforce
// Search and Insert) received over NATS.
//
//	sfblocks serve                   run a worker (with no configuration: embedded NATS + simulator)
//	sfblocks call search|insert      send one job and print the reply
//	sfblocks sim                     run the Salesforce simulator on its own
//	sfblocks authorize --account A   run the OAuth Web Server flow once for an account
//	sfblocks accounts check          check every account's auth and API usage
//	sfblocks accounts reset ACCOUNT  clear an account's refused credential in the token store
//	sfblocks result ID               print a finished job's kept result
//	sfblocks dlq ls|show|replay|purge list, show, replay or purge dead letters
//	sfblocks console                 serve the operators' web console
//	sfblocks fleet check|apply       compare or apply the fleet's JetStream settings
//	sfblocks bench [--preset floors] measure throughput, latency and memory against a bare baseline
//	sfblocks health                  exit 0 when the worker is ready: a container's health check
//
// Run "sfblocks help COMMAND" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run a worker; with no configuration, start an embedded NATS server and the Salesforce simulator", runServe},
		{"call", "send one Search or Insert job and print the reply (exit status 0 only when the status is ok)", runCall},
		{"sim", "run the Salesforce simulator on its own", runSim},
		{"status", "show each account's circuit breaker, token state and API usage, as every running worker reports it", runStatus},
		{"authorize", "run the OAuth Web Server flow for an account and store its refresh token", runAuthorize},
		{"accounts", "'accounts check': call /limits for every account and print auth state and API usage; 'accounts reset ACCOUNT': clear its refused credential", runAccounts},
		{"fleet", "'fleet check|apply': compare the fleet's JetStream settings with flags, or apply them (workers never change them)", runFleet},
		{"result", "print a finished job's kept result: 'result [--block B] [--account A] ID'", runResult},
		{"dlq", "list, show, replay or purge dead letters (jobs that failed for good): 'dlq ls|show|replay|purge'", runDLQ},
		{"console", "serve the operators' web console: accounts, workers, dead letters (filter, replay, purge), a job by id", runConsole},
		{"bench", "measure jobs/s, latency, Salesforce calls and memory under load, against a bare baseline", runBench},
		{"health", "exit 0 when the worker at --addr is ready (/readyz), 1 when not: a container's health check", runHealth},
		// Hidden (no summary): the baseline responder that bench starts.
		{"bench-baseline", "", runBenchBaseline},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "sfblocks", version)
			return nil
		}},
	}
}

// errUsage marks an error whose message is the usage text already printed.
var errUsage = errors.New("usage")

// exitError carries a specific exit status (sfblocks call exits 1 when the
// job did not end with status ok).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		usage(stderr)
		return 2
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1:
		// Asked for: the list of commands is the answer, not an error.
		usage(stdout)
		return 0
	}
	name := args[0]
	if name == "help" {
		// "help X [SUB]" is "X [SUB] --help": one text for both.
		name, args = args[1], append(append([]string{args[1]}, args[2:]...), "--help")
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.code
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "sfblocks %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stderr, "sfblocks: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sfblocks executes Salesforce Search and Insert scenario blocks received over NATS.")
	fmt.Fprintln(w, "\nUsage: sfblocks COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		if c.summary == "" {
			continue // internal command
		}
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sfblocks help COMMAND' (or 'sfblocks COMMAND --help') for a command's flags.")
}

// newFlagSet returns a flag set that prints its usage to stderr and returns
// errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sfblocks "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sfblocks %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; a bad flag is a usage error (already printed).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}
