package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/time/rate"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
)

const dlqSynopsis = `dlq ls|show|replay|purge [flags] [ID...]

Dead letters are durable jobs that failed for good (permanent failure,
attempts exhausted, ambiguous create) and failed synchronous inserts. An ID
is a job id (any block, any account: a bare number is a job id too), or a
dead letter's stream sequence written seq:N (N from the SEQ column of ls).

  sfblocks dlq ls [--block B] [--account A] [--code C] [--since 24h] [--json]
  sfblocks dlq show ID
  sfblocks dlq replay ID... | --code AUTH_FAILED ... | --all  [--dry-run] [--rate 5/s] [--payload FILE]
  sfblocks dlq purge ID... | --code C ... | --all  [--yes]

replay publishes each job again to PREFIX.jobs.BLOCK with its original id
and waits for its reply; a dead letter is deleted only once its replay
succeeded, and a replay that fails again leaves a fresh dead letter.`

// stdinConfirm is where purge reads its confirmation (tests replace it).
var stdinConfirm io.Reader = os.Stdin

// dlqFlags are the flags shared by the dlq subcommands.
type dlqFlags struct {
	conn    worker.ConnConfig
	natsURL string
	prefix  string
	block   string
	account string
	code    string
	since   string
	until   string
	json    bool
	all     bool
}

// addFilters adds the flags that select dead letters.
func (f *dlqFlags) addFilters(fs *flag.FlagSet) {
	fs.StringVar(&f.block, "block", "", "only dead letters of this block (search or insert)")
	fs.StringVar(&f.account, "account", "", "only dead letters of this account")
	fs.StringVar(&f.code, "code", "", "only dead letters with this error code (AUTH_FAILED) or Salesforce code (REQUIRED_FIELD_MISSING)")
	fs.StringVar(&f.since, "since", "", "only dead letters stored since: a duration ago (24h) or an RFC 3339 time")
	fs.StringVar(&f.until, "until", "", "only dead letters stored before: a duration ago or an RFC 3339 time")
}

// filter builds the client filter from the flags and the IDs.
func (f *dlqFlags) filter(refs []string, now time.Time) (client.DLQFilter, error) {
	flt := client.DLQFilter{Refs: refs, Block: sfblocks.Block(f.block), Account: f.account, Code: sfblocks.Code(strings.ToUpper(f.code))}
	if f.block != "" && f.block != string(sfblocks.Search) && f.block != string(sfblocks.Insert) {
		return flt, fmt.Errorf("--block %q: use search or insert", f.block)
	}
	var err error
	if flt.Since, err = parseWhen("--since", f.since, now); err != nil {
		return flt, err
	}
	if flt.Until, err = parseWhen("--until", f.until, now); err != nil {
		return flt, err
	}
	return flt, nil
}

// parseWhen reads "24h" (that long ago) or an RFC 3339 time; "" is zero.
func parseWhen(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: give a duration ago (24h, 90m) or an RFC 3339 time (2026-01-02T15:04:05Z)", name, s)
	}
	return t, nil
}

// parseInterspersed parses flags anywhere among the positional arguments
// ("dlq show 42 --json").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// dlqSubSynopses are each dlq subcommand's own help.
var dlqSubSynopses = map[string]string{
	"ls": `dlq ls [--block B] [--account A] [--code C] [--since 24h] [--until T] [--limit N] [--json]

Lists dead letters, oldest first, with the stream's retention and count.
--code matches the error code (AUTH_FAILED) or Salesforce's code
(REQUIRED_FIELD_MISSING).`,
	"show": `dlq show ID

Prints one dead letter's envelope as JSON: payload, headers, error,
Salesforce's result_code and result_body, attempts. ID is a job id or
seq:N (N from the SEQ column of ls).`,
	"replay": `dlq replay ID... | --code C ... | --all  [--dry-run] [--rate 5/s] [--payload FILE] [--json]

Publishes each selected job again to PREFIX.jobs.BLOCK with its original id
and waits for its reply; a dead letter is deleted only once its replay
succeeded, and a replay that fails again leaves a fresh dead letter.
--dry-run lists what would be replayed and publishes nothing.`,
	"purge": `dlq purge ID... | --code C ... | --all  [--yes]

Deletes the selected dead letters for good, after you type yes (or --yes).`,
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "ls", "show", "replay", "purge":
	case "-h", "--help":
		fmt.Fprintln(stderr, "Usage: sfblocks "+dlqSynopsis+"\n\nRun 'sfblocks dlq SUBCOMMAND --help' for its flags.")
		return flag.ErrHelp
	default:
		fmt.Fprintln(stderr, "Usage: sfblocks "+dlqSynopsis)
		return errUsage
	}
	fs := withTracingHelp(newFlagSet("dlq "+sub, dlqSubSynopses[sub], stderr))
	var f dlqFlags
	addConnFlags(fs, &f.conn, &f.natsURL)
	fs.StringVar(&f.prefix, "prefix", envOr("SFBLOCKS_PREFIX", sfblocks.DefaultPrefix), "subject prefix (env SFBLOCKS_PREFIX)")
	if sub != "show" {
		f.addFilters(fs)
	}
	var (
		dryRun, yes                    = new(bool), new(bool)
		rateFlag, payloadFile          = new(string), new(string)
		timeout                        = new(time.Duration)
		concurrency, limit             = new(int), new(int)
		defaultTimeout, defaultReplays = client.DefaultReplayTimeout, client.DefaultReplayConcurrency
	)
	switch sub {
	case "ls":
		fs.IntVar(limit, "limit", 0, "show at most this many (oldest first); 0 for all")
		fs.BoolVar(&f.json, "json", false, "print JSON")
	case "replay":
		fs.BoolVar(&f.all, "all", false, "select every dead letter (needed when no ID and no filter is given)")
		fs.BoolVar(dryRun, "dry-run", false, "list what would be replayed, publish nothing")
		fs.StringVar(rateFlag, "rate", "", "most replays per second, e.g. 5/s, 300/m or 5 (default no limit)")
		fs.StringVar(payloadFile, "payload", "", "a JSON file replacing the payload of the one dead letter replayed")
		fs.DurationVar(timeout, "timeout", defaultTimeout, "how long each replay waits for its reply")
		fs.IntVar(concurrency, "concurrency", defaultReplays, "replays waiting for their reply at once")
		fs.BoolVar(&f.json, "json", false, "print JSON")
	case "purge":
		fs.BoolVar(&f.all, "all", false, "select every dead letter (needed when no ID and no filter is given)")
		fs.BoolVar(yes, "yes", false, "do not ask for confirmation")
	}
	refs, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	flt, err := f.filter(refs, time.Now())
	if err != nil {
		return err
	}
	flt.Limit = *limit
	if (sub == "replay" || sub == "purge") && flt.Empty() && !f.all {
		return fmt.Errorf("%s what? give IDs, a filter (--block, --account, --code, --since, --until) or --all", sub)
	}
	if sub == "show" && len(refs) != 1 {
		return errors.New("show takes exactly one ID (a job id or a dead letter's sequence)")
	}
	f.conn.URLs = strings.Split(f.natsURL, ",")
	f.conn.Name = "sfblocks-dlq"
	nc, err := worker.Connect(f.conn)
	if err != nil {
		return err
	}
	defer nc.Close()
	traced, flush, err := clientTracing(ctx, stderr)
	if err != nil {
		return err
	}
	defer flush()
	c, err := client.New(nc, client.WithPrefix(f.prefix), traced)
	if err != nil {
		return err
	}
	switch sub {
	case "ls":
		return dlqList(ctx, c, flt, f.json, stdout)
	case "show":
		dl, err := c.GetDeadLetter(ctx, refs[0])
		if err != nil {
			return err
		}
		out, _ := json.MarshalIndent(dl, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return nil
	case "purge":
		return dlqPurge(ctx, c, flt, *yes, stdout, stderr)
	}
	opts := client.ReplayOptions{DryRun: *dryRun, Timeout: *timeout, Concurrency: *concurrency}
	perSecond, err := parseRate(*rateFlag)
	if err != nil {
		return err
	}
	if perSecond > 0 {
		opts.Limiter = rate.NewLimiter(rate.Limit(perSecond), 1)
	}
	if *payloadFile != "" {
		if opts.Payload, err = os.ReadFile(*payloadFile); err != nil {
			return fmt.Errorf("--payload: %w", err)
		}
		if !json.Valid(opts.Payload) {
			return fmt.Errorf("--payload %s is not JSON", *payloadFile)
		}
	}
	return dlqReplay(ctx, c, flt, opts, f.json, stdout, stderr)
}

// parseRate reads "5/s", "300/m", "2/h" or "5" (per second).
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	per := map[string]float64{"": 1, "s": 1, "m": 60, "h": 3600}[unit]
	if err != nil || n <= 0 || per == 0 {
		return 0, fmt.Errorf("--rate %q: write N/s, N/m or N/h with N > 0", s)
	}
	return n / per, nil
}

func dlqList(ctx context.Context, c *client.Client, flt client.DLQFilter, asJSON bool, stdout io.Writer) error {
	info, err := c.DLQInfo(ctx)
	if err != nil {
		return err
	}
	dls, err := c.ListDeadLetters(ctx, flt)
	if err != nil {
		return err
	}
	if asJSON {
		if dls == nil {
			dls = []*sfblocks.DeadLetter{}
		}
		out, _ := json.MarshalIndent(struct {
			Stream      *client.DLQInfo        `json:"stream"`
			DeadLetters []*sfblocks.DeadLetter `json:"dead_letters"`
		}{info, dls}, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return nil
	}
	fmt.Fprintf(stdout, "dead-letter stream %s: %d dead letters, kept %s%s\n", info.Stream, info.Messages, info.MaxAge, capText(info))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tSTORED\tBLOCK\tACCOUNT\tCODE\tREASON\tATTEMPTS\tJOB ID")
	for _, dl := range dls {
		code := string(dl.Error.Code)
		if dl.Error.SalesforceCode != "" {
			code += "/" + dl.Error.SalesforceCode
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", dl.Seq, dl.Stored.Format(time.RFC3339), dl.Block, dash(dl.Account),
			code, dl.Reason, dl.Attempts, dl.JobID)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "%d shown\n", len(dls))
	return nil
}

func capText(i *client.DLQInfo) string {
	var caps []string
	if i.MaxMsgs > 0 {
		caps = append(caps, fmt.Sprintf("at most %d messages", i.MaxMsgs))
	}
	if i.MaxBytes > 0 {
		caps = append(caps, fmt.Sprintf("at most %d bytes", i.MaxBytes))
	}
	if len(caps) == 0 {
		return ""
	}
	return " (" + strings.Join(caps, ", ") + "; when full, new dead letters are refused and their jobs handed back)"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dlqPurge(ctx context.Context, c *client.Client, flt client.DLQFilter, yes bool, stdout, stderr io.Writer) error {
	dls, err := c.ListDeadLetters(ctx, flt)
	if err != nil {
		return err
	}
	if len(dls) == 0 {
		fmt.Fprintln(stdout, "no dead letters selected")
		return nil
	}
	if !yes {
		fmt.Fprintf(stderr, "delete %d dead letters for good? type yes: ", len(dls))
		line, _ := bufio.NewReader(stdinConfirm).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("not confirmed; nothing deleted")
		}
	}
	refs := make([]string, len(dls))
	for i, dl := range dls {
		refs[i] = "seq:" + strconv.FormatUint(dl.Seq, 10)
	}
	n, err := c.PurgeDeadLetters(ctx, client.DLQFilter{Refs: refs})
	fmt.Fprintf(stdout, "purged %d dead letters\n", n)
	return err
}

func dlqReplay(ctx context.Context, c *client.Client, flt client.DLQFilter, opts client.ReplayOptions, asJSON bool, stdout, stderr io.Writer) error {
	p := newReplayProgress(stderr)
	if !opts.DryRun {
		// A dry run publishes nothing and waits for nothing: there is no
		// progress to show, and nothing is "done".
		opts.Progress = p.update
	}
	sum, err := c.ReplayDeadLetters(ctx, flt, opts)
	p.finish()
	if sum == nil {
		return err
	}
	if asJSON {
		out, _ := json.MarshalIndent(sum, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else {
		for _, r := range sum.Results {
			if r.Outcome == "" {
				continue // not reached
			}
			line := fmt.Sprintf("%-13s seq %d  %s %s", r.Outcome, r.Seq, r.Block, r.JobID)
			if r.Error != "" {
				line += "  (" + r.Error + ")"
			}
			fmt.Fprintln(stdout, line)
		}
		if opts.DryRun {
			fmt.Fprintf(stdout, "dry run, nothing published: selected %d, would replay %d, would skip %d\n",
				sum.Selected, sum.Selected-sum.Skipped, sum.Skipped)
		} else {
			fmt.Fprintf(stdout, "selected %d, replayed %d: succeeded %d, failed again %d, skipped %d\n",
				sum.Selected, sum.Replayed, sum.Succeeded, sum.FailedAgain, sum.Skipped)
		}
	}
	if err != nil {
		return err
	}
	if sum.FailedAgain > 0 {
		return exitError{code: 1}
	}
	return nil
}

// replayProgress draws a replay's progress on stderr: a bar redrawn in place on
// a terminal, otherwise a plain line at most every 2 seconds and at the end.
type replayProgress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	state client.ReplayProgress
	drawn bool
}

func newReplayProgress(w io.Writer) *replayProgress {
	p := &replayProgress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// update is called from the replay's goroutines, one at a time.
func (p *replayProgress) update(s client.ReplayProgress) {
	p.state = s
	if s.Total < 2 || s.Done == 0 && !p.tty {
		return // a log line says how far it got, not that it started
	}
	now := time.Now()
	switch {
	case p.tty:
		const width = 30
		fill := width * s.Done / s.Total
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d  ok %d  failed %d  skipped %d ",
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), s.Done, s.Total, s.Succeeded, s.FailedAgain, s.Skipped)
		p.drawn = true
	case now.Sub(p.last) >= 2*time.Second || s.Done == s.Total:
		fmt.Fprintf(p.w, "replay: %d/%d done (succeeded %d, failed again %d, skipped %d)\n", s.Done, s.Total, s.Succeeded, s.FailedAgain, s.Skipped)
		p.last = now
	}
}

func (p *replayProgress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
