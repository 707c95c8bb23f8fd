// Package memlimit chooses the Go runtime's soft memory limit of a worker
// (`sfblocks serve --memory-limit`). It is part of the wiring in
// cmd/sfblocks, not of the job's flow: the limit only tells the garbage
// collector when to work harder.
//
// A worker's memory grows with its jobs in flight: at 1000 calls in flight
// the goroutine stacks alone are about 17 MB, and Go's collector lets the
// heap grow by its live part plus the stacks before it collects. In a
// container with a memory limit, a burst can take the process past it and
// the kernel kills it, although most of that heap is garbage. With a soft
// limit below the container's, the collector runs more often as memory
// nears it instead. Outside a container there is nothing to protect, and
// no limit is set: collecting more often only costs CPU.
package memlimit

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
)

// Auto is the default setting: 90% of the cgroup's memory limit when the
// process has one and GOMEMLIMIT is not set, otherwise no limit.
const Auto = "auto"

// share of the cgroup's limit that auto takes: the rest is for what the
// runtime does not count (the binary's pages, the kernel's buffers of the
// process's sockets).
const share = 0.9

// Choice is the limit to set and why.
type Choice struct {
	// Bytes is the limit; 0 means none is set.
	Bytes int64
	// Why says where it comes from, for the start-up log.
	Why string
}

// Choose reads setting: Auto, "off" (or "0"), or a size in bytes with an
// optional unit (B, KiB, MiB, GiB, TiB, as GOMEMLIMIT writes them). root is
// where the cgroup files are read from ("/" in production, a test's
// directory in tests), getenv how GOMEMLIMIT is read.
func Choose(setting, root string, getenv func(string) string) (Choice, error) {
	switch setting {
	case "off", "0":
		return Choice{Why: "off"}, nil
	case Auto, "":
		if v := getenv("GOMEMLIMIT"); v != "" {
			return Choice{Why: "GOMEMLIMIT=" + v + " (left to the Go runtime)"}, nil
		}
		limit, file := cgroupLimit(root)
		if limit <= 0 {
			return Choice{Why: "no cgroup memory limit"}, nil
		}
		return Choice{Bytes: int64(float64(limit) * share), Why: fmt.Sprintf("90%% of the cgroup's %d bytes (%s)", limit, file)}, nil
	}
	n, err := parseSize(setting)
	if err != nil {
		return Choice{}, fmt.Errorf("--memory-limit %q: %w (use auto, off, or a size such as 512MiB)", setting, err)
	}
	return Choice{Bytes: n, Why: "--memory-limit " + setting}, nil
}

var units = []struct {
	suffix string
	mult   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = num, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, errors.New("not a positive size")
	}
	return n * mult, nil
}

// cgroupLimit returns the tightest memory limit of the process's cgroup
// and its parents (cgroup v2 memory.max, or v1 memory.limit_in_bytes), and
// the file it came from; 0 when there is none.
func cgroupLimit(root string) (int64, string) {
	f, err := os.Open(path.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	var best int64
	var from string
	consider := func(file string) {
		b, err := os.ReadFile(path.Join(root, file))
		if err != nil {
			return
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		// "max" (v2) or a page-rounded MaxInt64 (v1) mean no limit.
		if err != nil || n <= 0 || n >= 1<<62 {
			return
		}
		if best == 0 || n < best {
			best, from = n, "/"+file
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = "sys/fs/cgroup", "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		// The cgroup and its parents up to the mount's root; in a
		// container the path may name the host's hierarchy, and the
		// mount's root is the container's own cgroup.
		for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
			consider(path.Join(dir, p, file))
			if p == "/" {
				break
			}
		}
	}
	return best, from
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
