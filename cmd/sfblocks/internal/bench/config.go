package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks/worker"
)

// Path is a way the load reaches a responder; a run is one scenario driven
// through one path.
type Path string

// The paths the bench drives.
const (
	// PathSync sends jobs to the workers with micro request/reply.
	PathSync Path = "sync"
	// PathDurable sends jobs to the workers through the JetStream work
	// queue (client.DoDurable).
	PathDurable Path = "durable"
	// PathBaseline sends jobs to the bare responder of [ServeBaseline].
	PathBaseline Path = "baseline"
)

// PresetFloors is the [Config.Preset] that runs the five measurements of
// the performance floors and reports each against its floor.
const PresetFloors = "floors"

// The output formats of [Config.Format].
const (
	// FormatTable prints one aligned row per run, then the ratios and
	// floors.
	FormatTable = "table"
	// FormatJSON prints the whole report as indented JSON.
	FormatJSON = "json"
)

// Config is everything a bench can be told. Start from [DefaultConfig]:
// zero is a meaningful value for Latency and Warmup, so the zero Config is
// not the default one, and [Run] rejects its zero counts.
type Config struct {
	// Preset runs a preset instead of the scenario the other fields
	// describe: "" (default), [PresetFloors], [PresetCost] or [PresetAll]
	// (both, in one report). A preset uses only
	// Duration, Warmup, Rounds, JSONFile, Format, Binary, WorkerLogLevel,
	// JobTimeout and Progress.
	Preset string
	// Paths are driven in turn within each round, the order rotating from
	// round to round. Default: sync, baseline.
	Paths []Path
	// Clients is the number of concurrent callers, each sending a job as
	// soon as the last is answered. Default: 64.
	Clients int
	// Latency is added by the simulator to every REST call. Default: 0.
	Latency time.Duration
	// Workers is the number of `sfblocks serve` processes. Default: 1.
	Workers int
	// MaxInFlight is the --max-in-flight of each worker and of the
	// baseline. Default: worker.DefaultMaxInFlight (256).
	MaxInFlight int
	// Duration is the measurement window of each run. Default: 5s.
	Duration time.Duration
	// Warmup is the load before the window opens; at least twice Latency
	// is used. Default: 1s.
	Warmup time.Duration
	// Rounds is how often every run is repeated; ratios are per round and
	// their median is reported. Default: 3.
	Rounds int
	// Mix is the share of each block in the load. Default: searches only.
	Mix Mix
	// IdenticalSearches sends the same search every time, which the
	// workers' shared searches answer many at a time with one Salesforce
	// call. Default: false, each search a statement of its own (it asks
	// for the same Contact with its own LIMIT), so that every job costs one
	// call, as the baseline's do.
	IdenticalSearches bool
	// SimH2C makes the simulator speak and advertise cleartext HTTP/2
	// ([sfsim.Options.H2C]), which the workers then take; the baseline
	// stays on HTTP/1.1. Default: false, HTTP/1.1 for both.
	SimH2C bool
	// JSONFile, when set, also receives the report as JSON. Default: ""
	// (none).
	JSONFile string
	// Format is the report [Run] writes: [FormatTable] (default) or
	// [FormatJSON].
	Format string
	// Binary is the sfblocks executable started for the workers and the
	// baseline; it must have the serve and bench-baseline commands.
	// Default: "" (the running executable).
	Binary string
	// WorkerLogLevel is the --log-level of the workers, whose logs go to
	// files in the bench's temporary directory. Default: "info".
	WorkerLogLevel string
	// JobTimeout is how long a client waits for one reply. Default: 10s.
	JobTimeout time.Duration
	// Progress receives one line per finished run, so a long bench shows
	// it is alive. Default: nil (no progress lines).
	Progress io.Writer
	// NATSURL, when set, runs the workers and the load against this NATS
	// (comma-separated URLs, e.g. the three nodes of a cluster) instead of
	// the bench's embedded server. The bench creates the fleet's streams
	// there, and removes its own account's token record ("bench") from
	// the token bucket at start: point it at a NATS for benchmarks, not a
	// production fleet's. Default: "" (the embedded server).
	NATSURL string
	// Replicas is the workers' --replicas on NATSURL (the embedded server
	// always runs R1). Default: 1.
	Replicas int
	// CompareEmbedded, with NATSURL, runs every path of each round also
	// against the embedded one-node server and reports the ratio
	// NATSURL/embedded per path, measured within the same run. Default:
	// false.
	CompareEmbedded bool
}

// DefaultConfig returns the defaults documented on [Config]'s fields.
func DefaultConfig() Config {
	return Config{
		Paths:          []Path{PathSync, PathBaseline},
		Clients:        64,
		Workers:        1,
		MaxInFlight:    worker.DefaultMaxInFlight,
		Duration:       5 * time.Second,
		Warmup:         time.Second,
		Rounds:         3,
		Mix:            Mix{Search: 1},
		Format:         FormatTable,
		WorkerLogLevel: "info",
		JobTimeout:     10 * time.Second,
		Replicas:       1,
	}
}

// Validate reports the first setting [Run] cannot use. The messages name
// the command's flags, since that is where the settings come from.
func (c Config) Validate() error {
	if len(c.Paths) == 0 {
		return fmt.Errorf("--path is empty: use sync, durable or baseline, comma-separated")
	}
	for _, p := range c.Paths {
		if p != PathSync && p != PathDurable && p != PathBaseline {
			return fmt.Errorf("--path %q: use sync, durable or baseline, comma-separated", string(p))
		}
	}
	switch {
	case c.Clients < 1 || c.Workers < 1 || c.MaxInFlight < 1 || c.Rounds < 1:
		return fmt.Errorf("--clients, --workers, --max-in-flight and --rounds must be positive")
	case c.Duration <= 0 || c.Warmup < 0 || c.Latency < 0:
		return fmt.Errorf("--duration must be positive, --warmup and --latency not negative")
	case c.Format != FormatTable && c.Format != FormatJSON:
		return fmt.Errorf("--format %q: use table or json", c.Format)
	case c.Preset != "" && c.Preset != PresetFloors && c.Preset != PresetCost && c.Preset != PresetAll:
		return fmt.Errorf("--preset %q: use floors, cost or all", c.Preset)
	case c.Mix.Search < 0 || c.Mix.Search > 1:
		return fmt.Errorf("--mix: the search share %v is not in [0,1] (write search=WEIGHT,insert=WEIGHT)", c.Mix.Search)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("--replicas %d: use 1 to 5 (3 on a three-node cluster)", c.Replicas)
	case c.Replicas > 1 && c.NATSURL == "":
		return fmt.Errorf("--replicas %d needs --nats-url: the embedded server is one node and holds one replica", c.Replicas)
	case c.CompareEmbedded && c.NATSURL == "":
		return fmt.Errorf("--compare-embedded needs --nats-url: it compares that NATS with the embedded server")
	case (c.NATSURL != "" || c.CompareEmbedded) && c.Preset != "":
		return fmt.Errorf("--preset runs on the embedded server only: drop --nats-url and --compare-embedded, or the preset")
	}
	return nil
}

// ParsePaths parses a comma-separated list of paths ("sync,baseline"), as
// given to --path.
func ParsePaths(s string) ([]Path, error) {
	var out []Path
	for p := range strings.SplitSeq(s, ",") {
		p := Path(strings.TrimSpace(p))
		if p != PathSync && p != PathDurable && p != PathBaseline {
			return nil, fmt.Errorf("--path %q: use sync, durable or baseline, comma-separated", string(p))
		}
		out = append(out, p)
	}
	return out, nil
}
