package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// proc is one process started by the bench: a worker or the baseline. Each
// is a separate process of the sfblocks binary so that the two are
// measured alike (CPU time, peak RSS) and apart from the load generator.
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
func (e *env) startProc(name string, args []string, stdout io.Writer) (*proc, error) {
	p := &proc{name: name, logPath: filepath.Join(e.dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, fmt.Errorf("create the log file of %s: %w", name, err)
	}
	p.cmd = exec.Command(e.binary, args...)
	p.cmd.Stdout = stdout
	p.cmd.Stderr = logf
	p.cmd.Env = append(os.Environ(),
		EnvSecret+"="+sfsim.DefaultClientSecret,
		auth.EnvTokenKey+"="+e.tokenKey)
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s; give the sfblocks binary with --binary): %w", name, e.binary, err)
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
		if p.waitErr == nil {
			return fmt.Errorf("%s exited early (exit status 0); its log ends:\n%s", p.name, p.logTail())
		}
		return fmt.Errorf("%s exited early (%w); its log ends:\n%s", p.name, p.waitErr, p.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM (the worker drains) and waits; after 20s it kills.
// It takes no context: a process is stopped even when the bench is
// interrupted, so none outlives it.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stopAll stops procs at once, since each may take its drain timeout.
func stopAll(procs []*proc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.stop)
	}
	wg.Wait()
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
// where /proc is not available.
func (p *proc) cpuTime() time.Duration { return cpuTime(p.cmd.Process.Pid) }

// cpuTime reads /proc/PID/stat, which counts in clock ticks: 1/100 s on
// every Linux platform Go supports (USER_HZ).
func cpuTime(pid int) time.Duration {
	if runtime.GOOS != "linux" {
		return -1
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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
