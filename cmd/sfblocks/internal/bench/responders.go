package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks/worker"
)

// durableServeFlags turn on the durable path of the workers of a durable
// run. Synchronous runs start workers with serve's defaults.
var durableServeFlags = []string{"--durable=true"}

// workerSpec is how the workers of one run are started.
type workerSpec struct {
	count       int
	maxInFlight int
	// maxBacklog is each worker's --max-backlog. The load is closed-loop, so
	// a backlog as large as the client count means no job is refused for
	// saturation: the bench measures capacity, not load shedding.
	maxBacklog int
	durable    bool
	// extra are more serve flags.
	extra []string
}

// startWorkers starts spec.count `sfblocks serve` processes against the
// bench's NATS and simulator and waits until each one's /readyz answers 200.
func (e *env) startWorkers(ctx context.Context, spec workerSpec) ([]*proc, error) {
	var procs []*proc
	for i := range spec.count {
		addr, err := freeLoopbackAddr()
		if err != nil {
			stopAll(procs)
			return nil, err
		}
		args := []string{"serve", "--nats-url", e.cur.url, "--replicas", strconv.Itoa(e.cur.replicas), "--config", e.config,
			"--metrics-addr", addr, "--max-in-flight", strconv.Itoa(spec.maxInFlight),
			"--max-backlog", strconv.Itoa(max(spec.maxBacklog, worker.DefaultBacklogFactor*spec.maxInFlight)),
			"--data-dir", filepath.Join(e.dir, fmt.Sprintf("worker-%d", i)),
			"--drain-timeout", "10s", "--log-format", "json", "--log-level", e.logLevel}
		if spec.durable {
			args = append(args, durableServeFlags...)
		}
		args = append(args, spec.extra...)
		p, err := e.startProc(fmt.Sprintf("worker-%d", i), args, io.Discard)
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
func (e *env) startBaseline(ctx context.Context, maxInFlight int) (*proc, error) {
	pr, pw := io.Pipe()
	p, err := e.startProc("baseline", []string{"bench-baseline", "--nats-url", e.cur.url,
		"--instance-url", e.sim.MyDomainURL(), "--max-in-flight", strconv.Itoa(maxInFlight)}, pw)
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

// waitReady polls the worker's /readyz until it answers 200.
func waitReady(ctx context.Context, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.metrics+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("readiness request to %s: %w", p.name, err)
		}
		if res, err := http.DefaultClient.Do(req); err == nil {
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
func (p *proc) inFlight(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.metrics+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("metrics request to %s: %w", p.name, err)
	}
	// Uncompressed: the worker would otherwise gzip every sample, a cost
	// of the measurement (a new compressor each time) that the baseline,
	// which is not sampled, does not pay.
	req.Header.Set("Accept-Encoding", "identity")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the metrics of %s: %w", p.name, err)
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

// freeLoopbackAddr returns a loopback address that was free a moment ago,
// for a worker's --metrics-addr. It is the one place the bench reserves a
// port by listening and closing: serve binds its metrics address itself,
// and reports the address it got only in an info-level log line, which
// --worker-log-level may leave out. The bench could bind :0 and read the
// address back only if serve could take an inherited listener or always
// said where it listens.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port for a worker's metrics: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
