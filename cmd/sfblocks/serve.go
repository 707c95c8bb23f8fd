package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/memlimit"
	"github.com/sfblocks/sfblocks/worker"
)

// serveConfig is everything `sfblocks serve` can be told, by flag or by
// environment variable (flags win).
type serveConfig struct {
	natsURL      string
	conn         worker.ConnConfig
	embeddedAddr string
	dataDir      string
	configPath   string
	simAddr      string
	metricsAddr  string
	// pprofAddr serves net/http/pprof when set (debugging only).
	pprofAddr string
	// memoryLimit is the Go runtime's soft memory limit (memlimit.Choose).
	memoryLimit  string
	prefix       string
	queueGroup   string
	maxInFlight  int
	maxBacklog   int // -1: worker's default, 4 × maxInFlight
	jobTimeout   time.Duration
	drainTimeout time.Duration
	maxJobBytes  int
	// landingWindow: see worker.WithLandingWindow.
	landingWindow time.Duration
	// replySubjects: see worker.WithReplySubjects; comma-separated.
	replySubjects string
	// accountShare: see worker.WithAccountShare; -1 derives it.
	accountShare int
	// coalesceCalls, coalesceGather, shareSearches: see
	// blocks.WithCoalescing and blocks.WithSharedSearches.
	coalesceCalls  int
	coalesceGather time.Duration
	shareSearches  bool
	// apiReservePct, budgetPoll: see worker.BudgetConfig; maxLongCalls:
	// see salesforce.LimitLongCalls.
	apiReservePct float64
	budgetPoll    time.Duration
	maxLongCalls  int
	logLevel      string
	logFormat     string
	// breaker holds the per-account circuit breaker thresholds; the
	// failure ratio comes in as a percentage (breakerFailurePct).
	breaker           breaker.Settings
	breakerFailurePct int
	// durable holds the durable path's settings (serve_durable.go).
	durable durableFlags
	// connectTimeout bounds the wait for NATS at start; 0 waits until
	// stopped (serve_connect.go).
	connectTimeout time.Duration
	// console holds the web console's settings (console.go); off unless
	// its address is set.
	console consoleFlags
}

func (c *serveConfig) flags(fsName string, stderr io.Writer) *flag.FlagSet {
	fs := withTracingHelp(newFlagSet(fsName, "serve [flags]", stderr))
	fs.StringVar(&c.natsURL, "nats-url", envOr("SFBLOCKS_NATS_URL", os.Getenv("NATS_URL")), "NATS server URL(s), comma-separated; empty starts an embedded NATS server (env SFBLOCKS_NATS_URL or NATS_URL)")
	fs.StringVar(&c.conn.User, "nats-user", envOr("SFBLOCKS_NATS_USER", ""), "NATS user (env SFBLOCKS_NATS_USER)")
	fs.StringVar(&c.conn.Password, "nats-password", envOr("SFBLOCKS_NATS_PASSWORD", ""), "NATS password (env SFBLOCKS_NATS_PASSWORD)")
	fs.StringVar(&c.conn.Token, "nats-token", envOr("SFBLOCKS_NATS_TOKEN", ""), "NATS token (env SFBLOCKS_NATS_TOKEN)")
	fs.StringVar(&c.conn.NKeySeedFile, "nats-nkey", envOr("SFBLOCKS_NATS_NKEY", ""), "file holding an NKEY seed (env SFBLOCKS_NATS_NKEY)")
	fs.StringVar(&c.conn.CredsFile, "nats-creds", envOr("SFBLOCKS_NATS_CREDS", ""), "NATS credentials file (env SFBLOCKS_NATS_CREDS)")
	fs.StringVar(&c.conn.TLSCAFile, "nats-tls-ca", envOr("SFBLOCKS_NATS_TLS_CA", ""), "CA bundle to verify the NATS server (env SFBLOCKS_NATS_TLS_CA)")
	fs.StringVar(&c.conn.TLSCertFile, "nats-tls-cert", envOr("SFBLOCKS_NATS_TLS_CERT", ""), "client certificate for NATS (env SFBLOCKS_NATS_TLS_CERT)")
	fs.StringVar(&c.conn.TLSKeyFile, "nats-tls-key", envOr("SFBLOCKS_NATS_TLS_KEY", ""), "client key for NATS (env SFBLOCKS_NATS_TLS_KEY)")
	fs.StringVar(&c.embeddedAddr, "embedded-nats-addr", envOr("SFBLOCKS_EMBEDDED_NATS_ADDR", "127.0.0.1:4222"), "listen address of the embedded NATS server, used when no --nats-url is given")
	fs.StringVar(&c.dataDir, "data-dir", envOr("SFBLOCKS_DATA_DIR", ".sfblocks"), "directory for the embedded NATS server's JetStream store")
	fs.StringVar(&c.configPath, "config", envOr("SFBLOCKS_CONFIG", ""), "accounts config file (JSON); empty starts the Salesforce simulator with a development account (env SFBLOCKS_CONFIG)")
	fs.StringVar(&c.simAddr, "sim-addr", envOr("SFBLOCKS_SIM_ADDR", "127.0.0.1:8443"), "listen address of the simulator started when no --config is given")
	fs.StringVar(&c.metricsAddr, "metrics-addr", envOr("SFBLOCKS_METRICS_ADDR", "127.0.0.1:9464"), "address of /metrics, /healthz and /readyz; empty turns them off (env SFBLOCKS_METRICS_ADDR)")
	fs.StringVar(&c.pprofAddr, "pprof-addr", envOr("SFBLOCKS_PPROF_ADDR", ""), "address of Go's /debug/pprof/ profiles, for debugging only (they show the process's internals to whoever can reach the address; keep it on loopback); empty, the default, turns them off (env SFBLOCKS_PPROF_ADDR)")
	fs.StringVar(&c.memoryLimit, "memory-limit", envOr("SFBLOCKS_MEMORY_LIMIT", memlimit.Auto), "the Go runtime's soft memory limit: auto (90% of the cgroup's memory limit when there is one and GOMEMLIMIT is not set; none otherwise), off, or a size such as 512MiB. Near it the garbage collector works harder instead of the process outgrowing its container (env SFBLOCKS_MEMORY_LIMIT)")
	fs.StringVar(&c.prefix, "prefix", envOr("SFBLOCKS_PREFIX", sfblocks.DefaultPrefix), "subject prefix: jobs arrive on PREFIX.search and PREFIX.insert (env SFBLOCKS_PREFIX)")
	fs.StringVar(&c.queueGroup, "queue-group", envOr("SFBLOCKS_QUEUE_GROUP", worker.DefaultQueueGroup), "NATS queue group shared by the fleet (env SFBLOCKS_QUEUE_GROUP)")
	fs.IntVar(&c.maxInFlight, "max-in-flight", envInt("SFBLOCKS_MAX_IN_FLIGHT", worker.DefaultMaxInFlight), "jobs one worker runs at once (env SFBLOCKS_MAX_IN_FLIGHT)")
	fs.IntVar(&c.maxBacklog, "max-backlog", envInt("SFBLOCKS_MAX_BACKLOG", -1), "synchronous jobs that may wait for a slot when all are busy; more are answered at once with a retryable SALESFORCE_UNAVAILABLE (worker saturated); -1 means 4 × --max-in-flight (env SFBLOCKS_MAX_BACKLOG)")
	fs.DurationVar(&c.jobTimeout, "job-timeout", envDuration("SFBLOCKS_JOB_TIMEOUT", blocks.DefaultTimeout), "deadline of a job that sets no timeout_ms (env SFBLOCKS_JOB_TIMEOUT)")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", envDuration("SFBLOCKS_DRAIN_TIMEOUT", worker.DefaultDrainTimeout), "how long SIGTERM waits for jobs in flight (env SFBLOCKS_DRAIN_TIMEOUT)")
	fs.DurationVar(&c.landingWindow, "landing-window", envDuration("SFBLOCKS_LANDING_WINDOW", worker.DefaultLandingWindow), "how long after an Insert attempt's deadline its record may still appear in Salesforce; an attempt that found nothing is repeated only after it (env SFBLOCKS_LANDING_WINDOW)")
	fs.StringVar(&c.replySubjects, "reply-subjects", envOr("SFBLOCKS_REPLY_SUBJECTS", "_INBOX.>"), "subject patterns, comma-separated, the worker publishes replies to; a job whose reply subject is outside them (or is a system subject, or one of the fleet's own) is refused, not run (env SFBLOCKS_REPLY_SUBJECTS)")
	fs.IntVar(&c.accountShare, "account-max-in-flight", envInt("SFBLOCKS_ACCOUNT_MAX_IN_FLIGHT", -1), "most in-flight slots one account's jobs may hold, so one slow org never takes them all; -1 means 3/4 of --max-in-flight when several accounts are configured and no cap with one (env SFBLOCKS_ACCOUNT_MAX_IN_FLIGHT)")
	fs.IntVar(&c.coalesceCalls, "coalesce-calls", envInt("SFBLOCKS_COALESCE_CALLS", blocks.DefaultCoalesceCalls), "sObject Collections calls one account may have in flight per worker; Inserts waiting meanwhile ride the next call (up to 200 records, one API request); 0 sends every Insert alone (env SFBLOCKS_COALESCE_CALLS)")
	fs.DurationVar(&c.coalesceGather, "coalesce-gather", envDuration("SFBLOCKS_COALESCE_GATHER", blocks.DefaultGather), "the most a batch of Inserts waits for company while its account has a call in flight (it waits a quarter of the account's recent call latency, up to this); an idle account never waits (env SFBLOCKS_COALESCE_GATHER)")
	fs.BoolVar(&c.shareSearches, "share-searches", envBool("SFBLOCKS_SHARE_SEARCHES", true), "identical Searches in flight at the same moment share one Salesforce call (env SFBLOCKS_SHARE_SEARCHES)")
	fs.Float64Var(&c.apiReservePct, "api-reserve", envFloat("SFBLOCKS_API_RESERVE", worker.DefaultReserve*100), "percentage of each org's daily API allocation kept for synchronous jobs: once usage enters it, the account's durable jobs wait in JetStream until usage falls below it; 0 turns the guard off (env SFBLOCKS_API_RESERVE)")
	fs.DurationVar(&c.budgetPoll, "budget-poll", envDuration("SFBLOCKS_BUDGET_POLL", worker.DefaultBudgetPoll), "how often an account in its API reserve has its /limits read when no answer brought fresh usage (env SFBLOCKS_BUDGET_POLL)")
	fs.IntVar(&c.maxLongCalls, "max-long-calls", envInt("SFBLOCKS_MAX_LONG_CALLS", salesforce.DefaultMaxLongCalls), "calls of one account that may run 20 s or more at once in this worker; more are held back as the org's concurrent-request limit (25 production, 5 Developer) would refuse them; keep workers × this under the org's limit; 0 turns it off (env SFBLOCKS_MAX_LONG_CALLS)")
	fs.IntVar(&c.maxJobBytes, "max-job-bytes", envInt("SFBLOCKS_MAX_JOB_BYTES", blocks.DefaultMaxJobBytes), "largest job accepted, in bytes (env SFBLOCKS_MAX_JOB_BYTES)")
	fs.StringVar(&c.logLevel, "log-level", envOr("SFBLOCKS_LOG_LEVEL", "info"), "debug, info, warn or error (env SFBLOCKS_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", envOr("SFBLOCKS_LOG_FORMAT", "auto"), "json, console, or auto (console on a terminal) (env SFBLOCKS_LOG_FORMAT)")
	fs.IntVar(&c.breaker.ConsecutiveFailures, "breaker-failures", envInt("SFBLOCKS_BREAKER_FAILURES", breaker.DefaultConsecutiveFailures), "consecutive Salesforce failures (5xx, timeouts, refused connections, REQUEST_LIMIT_EXCEEDED) that open an account's circuit breaker (env SFBLOCKS_BREAKER_FAILURES)")
	fs.IntVar(&c.breakerFailurePct, "breaker-failure-percent", envInt("SFBLOCKS_BREAKER_FAILURE_PERCENT", int(breaker.DefaultFailureRatio*100)), "also open the breaker when this percentage of an account's calls in --breaker-window failed (env SFBLOCKS_BREAKER_FAILURE_PERCENT)")
	fs.IntVar(&c.breaker.MinRequests, "breaker-min-calls", envInt("SFBLOCKS_BREAKER_MIN_CALLS", breaker.DefaultMinRequests), "calls --breaker-window must hold before --breaker-failure-percent applies (env SFBLOCKS_BREAKER_MIN_CALLS)")
	fs.DurationVar(&c.breaker.Window, "breaker-window", envDuration("SFBLOCKS_BREAKER_WINDOW", breaker.DefaultWindow), "rolling window of --breaker-failure-percent (env SFBLOCKS_BREAKER_WINDOW)")
	fs.DurationVar(&c.breaker.OpenTimeout, "breaker-open-for", envDuration("SFBLOCKS_BREAKER_OPEN_FOR", breaker.DefaultOpenTimeout), "how long an open breaker fails an account's calls at once before probing Salesforce (env SFBLOCKS_BREAKER_OPEN_FOR)")
	fs.DurationVar(&c.breaker.SlowCall, "breaker-slow-call", envDuration("SFBLOCKS_BREAKER_SLOW_CALL", breaker.DefaultSlowCall), "a call cut short by its job's deadline counts as a Salesforce failure only when it waited at least this long (a job's own short timeout_ms is not Salesforce failing) (env SFBLOCKS_BREAKER_SLOW_CALL)")
	fs.IntVar(&c.breaker.HalfOpenProbes, "breaker-probes", envInt("SFBLOCKS_BREAKER_PROBES", breaker.DefaultHalfOpenProbes), "probe calls a half-open breaker lets through; that many successes close it (env SFBLOCKS_BREAKER_PROBES)")
	c.durable.addFlags(fs)
	// Reaching NATS (serve_connect.go).
	fs.DurationVar(&c.connectTimeout, "nats-connect-timeout", envDuration("SFBLOCKS_NATS_CONNECT_TIMEOUT", 0), "how long a worker that cannot reach NATS (or JetStream) at start keeps trying before it exits; 0 keeps trying until stopped (env SFBLOCKS_NATS_CONNECT_TIMEOUT)")
	fs.BoolVar(&c.conn.InOrder, "nats-url-in-order", envBool("SFBLOCKS_NATS_URL_IN_ORDER", false), "try the --nats-url servers in the order given (this worker's own node first) instead of at random (env SFBLOCKS_NATS_URL_IN_ORDER)")
	c.console.add(fs, "console-", "")
	return fs
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := cfg.flags("serve", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	ml, err := memlimit.Choose(cfg.memoryLimit, "/", os.Getenv)
	if err != nil {
		return err
	}
	if ml.Bytes > 0 {
		debug.SetMemoryLimit(ml.Bytes)
		log.Info().Int64("memory_limit_bytes", ml.Bytes).Str("from", ml.Why).Msg("Go runtime memory limit set")
	} else {
		log.Debug().Str("why", ml.Why).Msg("no Go runtime memory limit set")
	}
	var consoleTok string
	if cfg.console.addr != "" {
		// Refused before anything starts. Development mode (no --config)
		// is the console's too: without a token it makes one, on a
		// loopback address only.
		devDir := ""
		if cfg.configPath == "" {
			devDir = cfg.dataDir
		}
		if consoleTok, err = consoleToken(cfg.console, devDir, log); err != nil {
			return err
		}
	}
	tp, flush, err := startTracing(ctx, log)
	if err != nil {
		return err
	}
	defer flush() // after the worker drained: its last jobs' spans go too
	env, err := startEnvironment(ctx, &cfg, log)
	if env != nil {
		defer env.close()
	}
	if err != nil {
		return err
	}
	env.tracer = tp.TracerProvider // unwrapped: the worker knows a noop provider by its type

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sfm, err := salesforce.NewMetrics(reg)
	if err != nil {
		return err
	}

	if cfg.apiReservePct < 0 || cfg.apiReservePct >= 100 {
		return fmt.Errorf("--api-reserve %v: use a percentage from 0 (off) to below 100", cfg.apiReservePct)
	}
	names := make([]string, len(env.auth.Accounts))
	for i, a := range env.auth.Accounts {
		names[i] = a.Name
	}
	budget, err := worker.NewBudget(worker.BudgetConfig{Reserve: cfg.apiReservePct / 100, Accounts: names,
		Poll: cfg.budgetPoll, Logger: log, Limits: env.dailyLimits, Replicas: cfg.durable.cfg.Replicas})
	if err != nil {
		return err
	}
	env.budget = budget
	for _, name := range names {
		// The fleet's view of each account's budget, as the durable path
		// acts on it.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "sfblocks", Subsystem: "budget", Name: "in_reserve",
			Help:        "1 while the account's API usage is in the reserve kept for synchronous jobs (its durable jobs wait), else 0.",
			ConstLabels: prometheus.Labels{"account": name},
		}, func() float64 {
			if budget.State(name).InReserve {
				return 1
			}
			return 0
		}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "sfblocks", Subsystem: "budget", Name: "reserve_from_requests",
			Help:        "API usage at which the account's durable jobs wait (0: guard off or allocation unknown).",
			ConstLabels: prometheus.Labels{"account": name},
		}, func() float64 { return float64(budget.State(name).ReserveFrom) }))
	}
	accounts, err := env.accounts(ctx, log, sfm, reg)
	if err != nil {
		return err
	}
	bm, err := blocks.NewMetrics(reg)
	if err != nil {
		return err
	}
	exec, err := blocks.NewExecutor(accounts,
		blocks.WithDefaultTimeout(cfg.jobTimeout),
		blocks.WithMaxJobBytes(cfg.maxJobBytes),
		blocks.WithCoalescing(cfg.coalesceCalls, cfg.coalesceGather),
		blocks.WithSharedSearches(cfg.shareSearches),
		blocks.WithMetrics(bm))
	if err != nil {
		return err
	}
	wm, err := worker.NewMetrics(reg)
	if err != nil {
		return err
	}
	wopts := []worker.Option{
		worker.WithPrefix(cfg.prefix),
		worker.WithQueueGroup(cfg.queueGroup),
		worker.WithMaxInFlight(cfg.maxInFlight),
		worker.WithDrainTimeout(cfg.drainTimeout),
		worker.WithVersion(version),
		worker.WithLogger(log),
		worker.WithMetrics(wm),
		worker.WithTracerProvider(env.tracer),
		worker.WithLandingWindow(cfg.landingWindow),
		worker.WithReplySubjects(strings.Split(cfg.replySubjects, ",")...)}
	if cfg.maxBacklog != -1 {
		wopts = append(wopts, worker.WithMaxBacklog(cfg.maxBacklog))
	}
	share := cfg.accountShare
	if share < 0 {
		share = 0
		if len(env.auth.Accounts) > 1 {
			share = max(1, cfg.maxInFlight*3/4)
		}
	}
	wopts = append(wopts, worker.WithAccountShare(share), worker.WithBudget(budget))
	w, err := worker.New(env.nc, exec, append(wopts, cfg.durable.options()...)...)
	if err != nil {
		return err
	}

	// A worker that cannot open the fleet's tokens finds out now, not at
	// the first job: the cache logs it once, naming the fix, and /readyz
	// reports it until it is fixed.
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	if err := env.cache.CheckStore(cctx); err != nil && auth.CodeOf(err) != auth.CodeTokenKey {
		log.Warn().Err(err).Msg("could not read the token store at start; jobs read it again")
	}
	cancel()
	ready := func() error {
		if err := w.Ready(); err != nil {
			return err
		}
		return env.cache.Ready()
	}

	if cfg.metricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener on %s: %w (set --metrics-addr, or empty to turn it off)", cfg.metricsAddr, err)
		}
		hs := &http.Server{Handler: worker.NewHTTPHandler(reg, ready), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics, /healthz and /readyz")
	}

	if cfg.pprofAddr != "" {
		stop, err := servePprof(cfg.pprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	if cfg.console.addr != "" {
		stop, err := startConsole(ctx, env.nc, cfg.prefix, consoleTok, cfg.console, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	if err := w.Start(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// Stopped (SIGTERM) while still starting: a clean stop too.
			return nil
		}
		return err
	}
	// Said only now: the subscriptions are live at the server.
	log.Info().Str("search", w.Subject(sfblocks.Search)).Str("insert", w.Subject(sfblocks.Insert)).
		Str("queue_group", cfg.queueGroup).Int("max_in_flight", cfg.maxInFlight).Msg("worker taking jobs")
	if js, err := jetstream.New(env.nc); err == nil {
		budget.SetWorker(w.ID())
		if err := budget.Start(ctx, js); err != nil {
			log.Warn().Err(err).Msg("not sharing API usage with the fleet; this worker keeps the reserve by what it sees itself")
		}
	}
	if err := env.reportStatus(ctx, w.ID(), log); err != nil {
		log.Warn().Err(err).Msg("not reporting account status ('sfblocks status' will not show this worker)")
	}
	err = w.Serve(ctx)
	log.Info().Err(err).Msg("worker stopped")
	return err
}

// environment is what serve runs against: a NATS connection, and, in
// development mode, the embedded NATS server and the simulator.
type environment struct {
	cfg   *serveConfig
	nc    *nats.Conn
	ns    *server.Server
	sim   *sfsim.Server
	auth  *auth.Config
	store auth.Store
	// cache is the token cache every account's client uses (set by
	// accounts).
	cache *auth.Cache
	close func()
	// status lists the accounts as 'sfblocks status' reports them.
	status []statusAccount
	// statusNudge asks the status reporter to write now (a breaker
	// changed state).
	statusNudge chan struct{}
	// budget keeps each account's API usage (set by runServe).
	budget *worker.Budget
	// clients are the accounts' Salesforce clients (set by accounts).
	clients map[string]*salesforce.Client
	// tracer is the provider of every span (set by runServe; a noop
	// provider unless OTEL_EXPORTER_OTLP_ENDPOINT is set).
	tracer trace.TracerProvider
}

// dailyLimits reads an account's daily API usage from /limits.
func (env *environment) dailyLimits(ctx context.Context, account string) (used, max int, err error) {
	c := env.clients[account]
	if c == nil {
		return 0, 0, fmt.Errorf("account %q has no client", account)
	}
	lim, err := c.Limits(ctx)
	if err != nil {
		return 0, 0, err
	}
	d, ok := lim["DailyApiRequests"]
	if !ok {
		return 0, 0, errors.New("/limits has no DailyApiRequests")
	}
	return d.Max - d.Remaining, d.Max, nil
}

// reportStatus starts writing every account's state to the status bucket
// until ctx ends.
func (env *environment) reportStatus(ctx context.Context, workerID string, log zerolog.Logger) error {
	js, err := jetstream.New(env.nc)
	if err != nil {
		return err
	}
	return worker.ReportStatus(ctx, js, workerID, collectStatus(env.status), worker.StatusConfig{Logger: log, Replicas: env.cfg.durable.cfg.Replicas, Nudge: env.statusNudge})
}

// startEnvironment connects to NATS (starting an embedded server when no
// URL is given), loads the accounts (starting the simulator with a
// development account when no config is given) and opens the token store.
func startEnvironment(ctx context.Context, cfg *serveConfig, log zerolog.Logger) (*environment, error) {
	env := &environment{cfg: cfg, statusNudge: make(chan struct{}, 1)}
	var closers []func()
	env.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	dev := false
	if cfg.natsURL == "" {
		dev = true
		ns, err := startEmbeddedNATS(cfg.embeddedAddr, filepath.Join(cfg.dataDir, "nats"))
		if err != nil {
			return env, err
		}
		env.ns = ns
		closers = append(closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
		cfg.natsURL = ns.ClientURL()
		log.Warn().Str("url", ns.ClientURL()).Str("store_dir", filepath.Join(cfg.dataDir, "nats")).
			Msg("no --nats-url given: started an embedded NATS server with JetStream (development mode)")
	}
	cfg.conn.URLs = strings.Split(cfg.natsURL, ",")
	cfg.conn.Logger = log
	cfg.conn.RetryOnFailedConnect = true
	nc, err := connectNATS(ctx, cfg, log)
	if err != nil {
		return env, err
	}
	env.nc = nc
	closers = append(closers, func() { nc.Close() })

	if cfg.configPath == "" {
		dev = true
		sim, err := sfsim.Start(cfg.simAddr, sfsim.Options{})
		if err != nil {
			return env, fmt.Errorf("start the Salesforce simulator on %s: %w (set --sim-addr, or --config for a real org)", cfg.simAddr, err)
		}
		env.sim = sim
		closers = append(closers, func() { sim.Close() })
		env.auth = devAccounts(sim.MyDomainURL())
		log.Warn().Str("instance_url", sim.MyDomainURL()).Str("account", "dev").
			Msg("no --config given: started the Salesforce simulator with its seed data and a development account 'dev' (client credentials); jobs go to the simulator, not to a real org")
	} else {
		ac, err := auth.LoadConfig(cfg.configPath)
		if err != nil {
			return env, err
		}
		env.auth = ac
	}

	store, err := waitJetStream(ctx, cfg, log, "opening the token store", func(ctx context.Context) (auth.Store, error) {
		return openTokenStore(ctx, nc, dev, cfg.dataDir, cfg.durable.cfg.Replicas, log)
	})
	if err != nil {
		return env, err
	}
	env.store = store
	if dev {
		log.Info().Msgf(`try: sfblocks call search --query "SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'" --var "ANI=+1 415 555 0100"`)
	}
	return env, nil
}

// openTokenStore returns the fleet-wide token store: the JetStream KV bucket,
// encrypted with SFBLOCKS_TOKEN_KEY (and opening what
// SFBLOCKS_TOKEN_KEY_PREVIOUS sealed). Without a key tokens stay in this
// process's memory; development mode instead keeps a generated key in the
// data directory, beside the embedded server's store.
func openTokenStore(ctx context.Context, nc *nats.Conn, dev bool, dataDir string, replicas int, log zerolog.Logger) (auth.Store, error) {
	cipher, err := auth.CipherFromEnv(nil)
	if errors.Is(err, auth.ErrNoTokenKey) {
		if !dev {
			log.Warn().Msg(err.Error())
			return auth.NewMemoryStore(), nil
		}
		if cipher, err = auth.KeyFile(filepath.Join(dataDir, "token.key")); err != nil {
			return nil, err
		}
		log.Info().Str("key_file", filepath.Join(dataDir, "token.key")).
			Msg("development mode: tokens in the JetStream KV bucket are encrypted with a generated key kept in the data directory; set SFBLOCKS_TOKEN_KEY in production")
	} else if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	store, err := auth.NewKVStore(kctx, js, auth.KVStoreConfig{Cipher: cipher, Replicas: tokenBucketReplicas(kctx, js, replicas)})
	if err != nil {
		if worker.Transient(err) && !errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("open the token store (JetStream KV): %w", err)
		}
		return nil, fmt.Errorf("open the token store (JetStream KV): %w; start nats-server with JetStream (-js)", err)
	}
	// Key ids, not keys: what operators compare across workers.
	log.Info().Strs("token_key_ids", cipher.KeyIDs()).Msg("tokens in the fleet's KV bucket are sealed with the first key id and opened with any")
	return failoverStore{Store: store, window: worker.DefaultFailoverWindow}, nil
}

// accounts builds one Salesforce client per configured account, all sharing
// the token cache and the HTTP connection pool. Each account's data calls
// and token requests pass that account's circuit breaker, which sits above
// the request metrics: calls it refuses never count as requests.
func (env *environment) accounts(_ context.Context, log zerolog.Logger, m *salesforce.Metrics, reg prometheus.Registerer) (blocks.Accounts, error) {
	if env.tracer == nil {
		env.tracer = noop.NewTracerProvider()
	}
	bs := env.cfg.breaker
	if env.cfg.breakerFailurePct < 0 || env.cfg.breakerFailurePct > 100 {
		return nil, fmt.Errorf("--breaker-failure-percent %d is outside 0..100 (0 means the default, 50)", env.cfg.breakerFailurePct)
	}
	bs.FailureRatio = float64(env.cfg.breakerFailurePct) / 100
	bs.Logger, bs.Registerer = log, reg
	// The status report follows a breaker's change at once, not 5 s later.
	bs.OnStateChange = func(string, breaker.State, breaker.State) {
		select {
		case env.statusNudge <- struct{}{}:
		default:
		}
	}
	breakers, err := breaker.NewSet(bs)
	if err != nil {
		return nil, fmt.Errorf("circuit breaker flags: %w", err)
	}
	hc := m.Instrument(salesforce.SharedHTTPClient(), salesforce.KindData)
	tokenHC := m.Instrument(http.DefaultClient, salesforce.KindToken)
	cache, err := auth.NewCache(env.auth, auth.CacheOptions{
		Store:          env.store,
		HTTPClient:     tokenHC,
		HTTPClientFor:  func(account string) *http.Client { return breakers.For(account).Client(tokenHC) },
		Logger:         log,
		TracerProvider: env.tracer,
	})
	if err != nil {
		return nil, err
	}
	env.cache = cache
	out := blocks.StaticAccounts{Clients: map[string]blocks.SalesforceAPI{}, IdempotencyFields: map[string]string{}}
	for _, a := range env.auth.Accounts {
		ts, err := cache.Source(a.Name)
		if err != nil {
			return nil, err
		}
		name := a.Name
		c, err := salesforce.New(ts,
			salesforce.WithAPIVersion(a.APIVersion),
			salesforce.WithTracerProvider(env.tracer),
			salesforce.WithSpanAttributes(attribute.String("sfblocks.account", a.Name)),
			// Held back before the breaker: a call the org would refuse for
			// its concurrent-request limit is not the org failing.
			salesforce.WithHTTPClient(salesforce.LimitLongCalls(breakers.For(a.Name).Client(hc), env.cfg.maxLongCalls, salesforce.LongCallThreshold)),
			salesforce.WithUsageObserver(func(u salesforce.Usage) {
				m.ObserveUsage(name, u)
				env.budget.Observe(name, u.Used, u.Max)
			}))
		if err != nil {
			return nil, fmt.Errorf("account %q: %w", a.Name, err)
		}
		out.Clients[a.Name] = c
		if env.clients == nil {
			env.clients = map[string]*salesforce.Client{}
		}
		env.clients[a.Name] = c
		if a.IdempotencyField != "" {
			out.IdempotencyFields[a.Name] = a.IdempotencyField
		}
		env.status = append(env.status, statusAccount{name: a.Name, breaker: breakers.For(a.Name), token: ts, client: c, budget: env.budget})
		if a.Default {
			out.Default = a.Name
		}
	}
	return out, nil
}

// startEmbeddedNATS starts a NATS server with JetStream on addr, storing its
// data under storeDir.
func startEmbeddedNATS(addr, storeDir string) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--embedded-nats-addr %q: %w", addr, err)
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return nil, fmt.Errorf("--embedded-nats-addr %q: %w", addr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // ":0" means any free port, as for net.Listen
	}
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the JetStream store directory: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "sfblocks-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS server did not start on %s (is the port in use? set --embedded-nats-addr, or --nats-url to use a running server)", addr)
	}
	return ns, nil
}

// devAccounts is development mode's accounts: "dev", client credentials
// against the simulator at loginURL (its My Domain URL).
func devAccounts(loginURL string) *auth.Config {
	return &auth.Config{Accounts: []*auth.Account{{
		Name:         "dev",
		LoginURL:     loginURL,
		ClientID:     sfsim.DefaultClientID,
		ClientSecret: auth.Secret(sfsim.DefaultClientSecret),
		Flow:         auth.FlowClientCredentials,
		APIVersion:   salesforce.DefaultAPIVersion,
		Default:      true,
	}}}
}

// devLoginURL is the My Domain URL of the simulator serve starts on
// simAddr in development mode: "localhost", the simulator's default My
// Domain host, on simAddr's port.
func devLoginURL(simAddr string) (string, error) {
	_, port, err := net.SplitHostPort(simAddr)
	if err != nil {
		return "", fmt.Errorf("--sim-addr %q: %w", simAddr, err)
	}
	return "http://localhost:" + port, nil
}
