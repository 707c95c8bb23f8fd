package console

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker"
)

// discoveryWait bounds how long a $SRV request waits for the workers'
// answers, and discoveryQuiet how long after the last answer it stops:
// every worker answers within milliseconds, but nobody says how many there
// are.
const (
	discoveryWait  = time.Second
	discoveryQuiet = 200 * time.Millisecond
)

// discover asks every worker of the service on $SRV.<verb>.<service>
// (micro.InfoVerb, micro.StatsVerb) and returns their answers, decoded
// into T (micro.Info, micro.Stats).
func discover[T any](ctx context.Context, nc *nats.Conn, verb micro.Verb, service string) ([]T, error) {
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	subject, err := micro.ControlSubject(verb, service, "")
	if err != nil {
		return nil, err
	}
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, err
	}
	deadline := time.NewTimer(discoveryWait)
	defer deadline.Stop()
	var quiet <-chan time.Time
	var out []T
	for {
		select {
		case m := <-ch:
			var v T
			if json.Unmarshal(m.Data, &v) == nil {
				out = append(out, v)
			}
			quiet = time.After(discoveryQuiet)
		case <-quiet:
			return out, nil
		case <-deadline.C:
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// blockCounters are one worker's counters for one block, as its
// endpoint's micro stats data says ([worker.EndpointData]).
type blockCounters struct {
	InFlight int64
	Finished int64 // ok + no_data + failed
	Failed   int64
	JobTime  time.Duration
}

// sample is one reading of every worker's counters.
type sample struct {
	At      time.Time
	Workers map[string]map[sfblocks.Block]blockCounters
}

// countersOf reads the blocks' counters from one worker's STATS answer;
// endpoints of another prefix are not the fleet's.
func countersOf(st micro.Stats, prefix string) map[sfblocks.Block]blockCounters {
	out := map[sfblocks.Block]blockCounters{}
	for _, e := range st.Endpoints {
		if e == nil || !strings.HasPrefix(e.Subject, prefix+".") {
			continue
		}
		var d worker.EndpointData
		if len(e.Data) > 0 {
			_ = json.Unmarshal(e.Data, &d)
		}
		out[sfblocks.Block(e.Name)] = blockCounters{InFlight: d.InFlight, Finished: d.OK + d.NoData + d.Failed, Failed: d.Failed, JobTime: d.JobTime}
	}
	return out
}

// sampler keeps the samples of the last History.
type sampler struct {
	history time.Duration
	mu      sync.Mutex
	samples []sample
}

func newSampler(history time.Duration) *sampler { return &sampler{history: history} }

func (s *sampler) add(sm sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, sm)
	cut := 0
	for cut < len(s.samples) && sm.At.Sub(s.samples[cut].At) > s.history {
		cut++
	}
	s.samples = append(s.samples[:0:0], s.samples[cut:]...)
}

func (s *sampler) all() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...)
}

// sample reads every worker's stats once and keeps them.
func (c *Console) sample(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	stats, err := discover[micro.Stats](sctx, c.cfg.NATS, micro.StatsVerb, c.cfg.Service)
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Debug().Err(err).Msg("console: sampling the workers' stats")
		return
	}
	sm := sample{At: c.now(), Workers: map[string]map[sfblocks.Block]blockCounters{}}
	for _, st := range stats {
		if meta := st.Metadata["prefix"]; meta != "" && meta != c.cfg.Prefix {
			continue
		}
		sm.Workers[st.ID] = countersOf(st, c.cfg.Prefix)
	}
	c.samples.add(sm)
}

// point is the fleet's activity between two samples, per block.
type point struct {
	At         time.Time
	JobsPerSec map[sfblocks.Block]float64
	FailPerSec map[sfblocks.Block]float64
	// MeanJobMS is the mean job time of the jobs that finished in the
	// interval; absent for a block with none.
	MeanJobMS map[sfblocks.Block]float64
	InFlight  map[sfblocks.Block]int64
	Workers   int
}

// series turns consecutive samples into points: the counters' growth of
// the workers present in both (a worker that restarted has a new id, so a
// counter never goes back).
func series(samples []sample) []point {
	var out []point
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		secs := b.At.Sub(a.At).Seconds()
		if secs <= 0 {
			continue
		}
		p := point{At: b.At, JobsPerSec: map[sfblocks.Block]float64{}, FailPerSec: map[sfblocks.Block]float64{},
			MeanJobMS: map[sfblocks.Block]float64{}, InFlight: map[sfblocks.Block]int64{}, Workers: len(b.Workers)}
		jobTime := map[sfblocks.Block]time.Duration{}
		finished := map[sfblocks.Block]int64{}
		for id, blocks := range b.Workers {
			for blk, cb := range blocks {
				p.InFlight[blk] += cb.InFlight
				ca, ok := a.Workers[id][blk]
				if !ok || cb.Finished < ca.Finished {
					continue
				}
				finished[blk] += cb.Finished - ca.Finished
				p.FailPerSec[blk] += float64(cb.Failed-ca.Failed) / secs
				jobTime[blk] += cb.JobTime - ca.JobTime
			}
		}
		for _, blk := range sfblocks.Blocks() {
			p.JobsPerSec[blk] = float64(finished[blk]) / secs
			if finished[blk] > 0 {
				p.MeanJobMS[blk] = float64(jobTime[blk]) / float64(finished[blk]) / float64(time.Millisecond)
			}
		}
		out = append(out, p)
	}
	return out
}

// workerRow is one worker on the Workers page.
type workerRow struct {
	ID          string
	Version     string
	Started     time.Time
	MaxInFlight string
	MaxBacklog  string
	Blocks      []endpointRow
}

// endpointRow is one block of one worker.
type endpointRow struct {
	Block       string
	Subject     string
	InFlight    int64
	OK          int64
	NoData      int64
	Failed      int64
	Errors      string
	AvgJob      time.Duration
	AvgDispatch time.Duration
	Requests    int
}

// workerRows reads every worker's INFO and STATS now.
func (c *Console) workerRows(ctx context.Context) ([]workerRow, error) {
	infos, err := discover[micro.Info](ctx, c.cfg.NATS, micro.InfoVerb, c.cfg.Service)
	if err != nil {
		return nil, err
	}
	stats, err := discover[micro.Stats](ctx, c.cfg.NATS, micro.StatsVerb, c.cfg.Service)
	if err != nil {
		return nil, err
	}
	byID := map[string]micro.Stats{}
	for _, st := range stats {
		byID[st.ID] = st
	}
	var rows []workerRow
	for _, in := range infos {
		if p := in.Metadata["prefix"]; p != "" && p != c.cfg.Prefix {
			continue
		}
		st := byID[in.ID]
		row := workerRow{ID: in.ID, Version: in.Version, Started: st.Started, MaxInFlight: in.Metadata["max_in_flight"], MaxBacklog: in.Metadata["max_backlog"]}
		for _, e := range st.Endpoints {
			if e == nil || !strings.HasPrefix(e.Subject, c.cfg.Prefix+".") {
				continue
			}
			var d worker.EndpointData
			_ = json.Unmarshal(e.Data, &d)
			er := endpointRow{Block: e.Name, Subject: e.Subject, InFlight: d.InFlight, OK: d.OK, NoData: d.NoData, Failed: d.Failed,
				AvgJob: d.AverageJobTime, AvgDispatch: e.AverageProcessingTime, Requests: e.NumRequests}
			var codes []string
			for code, n := range d.Errors {
				codes = append(codes, string(code)+" "+num(n))
			}
			sort.Strings(codes)
			er.Errors = strings.Join(codes, ", ")
			row.Blocks = append(row.Blocks, er)
		}
		sort.Slice(row.Blocks, func(i, j int) bool { return row.Blocks[i].Block < row.Blocks[j].Block })
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows, nil
}
