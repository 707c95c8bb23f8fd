package console

import (
	"fmt"
	"html/template"
	"net/http"

	"github.com/sfblocks/sfblocks"
)

// workersPageData is the data of workers.html.
type workersPageData struct {
	Workers []workerRow
	// Charts of the fleet over the samples kept.
	JobsChart, LatencyChart, InFlightChart template.HTML
	Samples                                int
	Interval, History                      string
	Service                                string
}

// blockClass is each block's series class in the charts.
var blockClass = map[sfblocks.Block]string{sfblocks.Search: "s0", sfblocks.Insert: "s1"}

func (c *Console) workersPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.readCtx(r)
	defer cancel()
	rows, err := c.workerRows(ctx)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Could not ask the workers ($SRV.INFO.%s): %v. Check that NATS is reachable and that the console's NATS user may publish to $SRV.> (the operator role may).", c.cfg.Service, err))
		return
	}
	samples := c.samples.all()
	pts := series(samples)
	now := c.now()
	from := now.Add(-c.cfg.History)
	var jobs, latency, inFlight []line
	for _, blk := range sfblocks.Blocks() {
		j := line{Name: string(blk) + " jobs/s", Class: blockClass[blk]}
		l := line{Name: string(blk) + " mean job time", Class: blockClass[blk]}
		f := line{Name: string(blk) + " in flight", Class: blockClass[blk]}
		for _, p := range pts {
			j.Points = append(j.Points, xy{p.At, p.JobsPerSec[blk]})
			if ms, ok := p.MeanJobMS[blk]; ok {
				l.Points = append(l.Points, xy{p.At, ms})
			}
			f.Points = append(f.Points, xy{p.At, float64(p.InFlight[blk])})
		}
		jobs, latency, inFlight = append(jobs, j), append(latency, l), append(inFlight, f)
	}
	data := workersPageData{Workers: rows, Samples: len(samples), Interval: dur(c.cfg.SampleInterval), History: dur(c.cfg.History), Service: c.cfg.Service,
		JobsChart:     lineChart("Jobs finished per second", "jobs/s", from, now, jobs),
		LatencyChart:  lineChart("Mean job time", "ms", from, now, latency),
		InFlightChart: lineChart("Jobs in flight", "jobs", from, now, inFlight),
	}
	c.render(w, r, http.StatusOK, "workers", "Workers", "workers", data)
}
