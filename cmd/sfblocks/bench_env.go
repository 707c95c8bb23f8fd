package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
)

// benchEnv is what every bench run shares: a temporary directory, an
// embedded NATS server with JetStream, the simulator, the accounts config
// the workers read, and the bench process's own NATS connection.
type benchEnv struct {
	dir      string
	binary   string
	ns       *server.Server
	sim      *sfsim.Server
	nc       *nats.Conn
	config   string
	tokenKey string
	logLevel string
}

// startBenchEnv starts NATS and the simulator; close removes everything.
func startBenchEnv(binary, logLevel string) (*benchEnv, error) {
	dir, err := os.MkdirTemp("", "sfblocks-bench-*")
	if err != nil {
		return nil, err
	}
	env := &benchEnv{dir: dir, binary: binary, logLevel: logLevel}
	ok := false
	defer func() {
		if !ok {
			env.close()
		}
	}()
	if env.ns, err = startEmbeddedNATS("127.0.0.1:0", filepath.Join(dir, "nats")); err != nil {
		return nil, err
	}
	// A daily API limit no run can reach: the runs make hundreds of
	// thousands of calls, and the default 15000 would turn them into 403s.
	if env.sim, err = sfsim.Start("127.0.0.1:0", sfsim.Options{DailyAPILimit: 1 << 40}); err != nil {
		return nil, err
	}
	if env.nc, err = nats.Connect(env.ns.ClientURL(), nats.Name("sfblocks-bench")); err != nil {
		return nil, err
	}
	cfg, _ := json.Marshal(map[string]any{"accounts": []map[string]any{{
		"name": "bench", "default": true, "login_url": env.sim.MyDomainURL(),
		"client_id": sfsim.DefaultClientID, "client_secret": "env:" + envBenchSecret,
		"flow": "client_credentials",
	}}})
	env.config = filepath.Join(dir, "accounts.json")
	if err := os.WriteFile(env.config, cfg, 0o600); err != nil {
		return nil, err
	}
	// The workers share one encrypted token cache in JetStream KV, as a
	// production fleet does: one token request for the whole fleet.
	if _, env.tokenKey, err = auth.GenerateKey(); err != nil {
		return nil, err
	}
	ok = true
	return env, nil
}

func (env *benchEnv) close() {
	if env.nc != nil {
		env.nc.Close()
	}
	if env.sim != nil {
		_ = env.sim.Close()
	}
	if env.ns != nil {
		env.ns.Shutdown()
		env.ns.WaitForShutdown()
	}
	_ = os.RemoveAll(env.dir)
}

// proc is one process started by bench: a worker or the baseline.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	metrics string // worker's metrics address; empty for the baseline
	done    chan struct{}
	waitErr error
}

// startProc starts the bench binary with args; its stderr goes to a log
// file in the bench directory (kept for error reports).
func (env *benchEnv) startProc(name string, args []string, stdout io.Writer) (*proc, error) {
	p := &proc{name: name, logPath: filepath.Join(env.dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(env.binary, args...)
	p.cmd.Stdout = stdout
	p.cmd.Stderr = logf
	p.cmd.Env = append(os.Environ(),
		envBenchSecret+"="+sfsim.DefaultClientSecret,
		auth.EnvTokenKey+"="+env.tokenKey)
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, env.binary, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// logTail returns the end of the process's log, for error messages.
func (p *proc) logTail() string {
	data, _ := os.ReadFile(p.logPath)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// exited reports whether the process has ended, with why.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited early (%v); its log ends:\n%s", p.name, p.waitErr, p.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM (the worker drains) and waits; after 20s it kills.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes,
// or -1 where /proc is not available.
func (p *proc) peakRSS() int64 { return peakRSS(p.cmd.Process.Pid) }

func peakRSS(pid int) int64 {
	if runtime.GOOS != "linux" {
		return -1
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// cpuTime returns the CPU time (user + system) the process has used, or -1
// where /proc is not available. /proc/PID/stat counts in clock ticks, which
// are 1/100 s on every Linux platform Go supports (USER_HZ).
func (p *proc) cpuTime() time.Duration {
	if runtime.GOOS != "linux" {
		return -1
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// cpuTimes sums cpuTime over procs (-1 when unknown).
func cpuTimes(procs []*proc) time.Duration {
	var sum time.Duration
	for _, p := range procs {
		t := p.cpuTime()
		if t < 0 {
			return -1
		}
		sum += t
	}
	return sum
}

// workerSpec is how the workers of one run are started.
type workerSpec struct {
	count       int
	maxInFlight int
	// maxBacklog is each worker's --max-backlog. The load is closed-loop, so
	// a backlog as large as the client count means no job is refused for
	// saturation: the bench measures capacity, not load shedding.
	maxBacklog int
	durable    bool
}

// startWorkers starts spec.count `sfblocks serve` processes against the
// bench's NATS and simulator and waits until each one's /readyz answers 200.
func (env *benchEnv) startWorkers(ctx context.Context, spec workerSpec) ([]*proc, error) {
	var procs []*proc
	for i := range spec.count {
		addr, err := freeLoopbackAddr()
		if err != nil {
			stopAll(procs)
			return nil, err
		}
		args := []string{"serve", "--nats-url", env.ns.ClientURL(), "--config", env.config,
			"--metrics-addr", addr, "--max-in-flight", strconv.Itoa(spec.maxInFlight),
			"--max-backlog", strconv.Itoa(max(spec.maxBacklog, worker.DefaultBacklogFactor*spec.maxInFlight)),
			"--data-dir", filepath.Join(env.dir, fmt.Sprintf("worker-%d", i)),
			"--drain-timeout", "10s", "--log-format", "json", "--log-level", env.logLevel}
		if spec.durable {
			args = append(args, durableServeFlags...)
		}
		p, err := env.startProc(fmt.Sprintf("worker-%d", i), args, io.Discard)
		if err != nil {
			stopAll(procs)
			return nil, err
		}
		p.metrics = addr
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := waitReady(ctx, p); err != nil {
			stopAll(procs)
			return nil, err
		}
	}
	return procs, nil
}

// startBaseline starts the baseline responder and waits for its "ready".
func (env *benchEnv) startBaseline(ctx context.Context, maxInFlight int) (*proc, error) {
	pr, pw := io.Pipe()
	p, err := env.startProc("baseline", []string{"bench-baseline", "--nats-url", env.ns.ClientURL(),
		"--instance-url", env.sim.MyDomainURL(), "--max-in-flight", strconv.Itoa(maxInFlight)}, pw)
	if err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		r := false
		for sc.Scan() {
			if sc.Text() == "ready" && !r {
				r = true
				ready <- true
			}
		}
		if !r {
			ready <- false
		}
	}()
	go func() { <-p.done; pw.Close() }()
	select {
	case ok := <-ready:
		if ok {
			return p, nil
		}
		<-p.done
		return nil, p.exited()
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("the baseline did not get ready within 30s; its log ends:\n%s", p.logTail())
	}
}

func stopAll(procs []*proc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// waitReady polls the worker's /readyz until it answers 200.
func waitReady(ctx context.Context, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		if res, err := http.Get("http://" + p.metrics + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s never became ready within 30s; its log ends:\n%s", p.name, p.logTail())
}

// inFlight reads the worker's sfblocks_jobs_in_flight gauge.
func (p *proc) inFlight() (int, error) {
	res, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "sfblocks_jobs_in_flight "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int(v), err
		}
	}
	return 0, errors.New("no sfblocks_jobs_in_flight in /metrics")
}

// freeLoopbackAddr returns a loopback address that was free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
