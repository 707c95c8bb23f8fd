package console

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// The charts and gauges are inline SVG built here, styled by console.css
// through classes: no script draws them, and the Content Security Policy
// needs no inline style.

// line is one series of a chart.
type line struct {
	Name   string
	Class  string // CSS class: s0, s1...
	Points []xy
}

type xy struct {
	At time.Time
	V  float64
}

// Geometry, in SVG user units.
const (
	chartW, chartH         = 560, 180
	padL, padR, padT, padB = 52, 12, 12, 26
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	gaugeW, gaugeH         = 260, 18
)

// lineChart draws series over [from, to] with a y axis from 0 to a round
// maximum; unit labels the axis. A chart without points says so.
func lineChart(title, unit string, from, to time.Time, series []line) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		chartW, chartH, html.EscapeString(title+" ("+unit+")"))
	top := 0.0
	n := 0
	for _, s := range series {
		for _, p := range s.Points {
			top = math.Max(top, p.V)
			n++
		}
	}
	top = niceCeil(math.Max(top, 1))
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 { return padL + plotW*math.Min(1, math.Max(0, t.Sub(from).Seconds()/span)) }
	y := func(v float64) float64 { return padT + plotH*(1-v/top) }

	grid := gridLines(top)
	for i := 0; i <= grid; i++ {
		v := top * float64(i) / float64(grid)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, y(v), chartW-padR, y(v))
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y(v)+4, html.EscapeString(axisLabel(v)))
	}
	for i := 0; i <= 4; i++ {
		t := from.Add(time.Duration(float64(to.Sub(from)) * float64(i) / 4))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="%s">%s</text>`, x(t), chartH-8, anchor, t.UTC().Format("15:04:05"))
	}
	fmt.Fprintf(&b, `<text class="unit" x="%d" y="%d">%s</text>`, padL+4, padT+12, html.EscapeString(unit))
	if n == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no samples yet: the console samples the workers every few seconds</text>`,
			padL+plotW/2, padT+plotH/2)
	}
	for _, s := range series {
		if len(s.Points) == 0 {
			continue
		}
		pts := make([]string, len(s.Points))
		for i, p := range s.Points {
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(p.At), y(p.V))
		}
		fmt.Fprintf(&b, `<polyline class="series %s" points="%s"><title>%s</title></polyline>`,
			html.EscapeString(s.Class), strings.Join(pts, " "), html.EscapeString(s.Name))
		if len(s.Points) == 1 {
			fmt.Fprintf(&b, `<circle class="series-dot %s" cx="%s" r="3"/>`, html.EscapeString(s.Class), strings.Replace(pts[0], ",", `" cy="`, 1))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value above is a number or escaped
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// gridLines is how many steps divide an axis up to top (1, 2 or 5 times
// a power of ten) into round values: 0.2, 0.5 or 1 times that power.
func gridLines(top float64) int {
	m := top / math.Pow(10, math.Floor(math.Log10(top)))
	if math.Abs(m-2) < 1e-9 {
		return 4
	}
	return 5
}

func axisLabel(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return strconvFloat(math.Round(v/100)/10) + "k"
	case v >= 10 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return strconvFloat(v)
}

// budgetGauge draws an org's daily API usage: the used part of the
// allocation, and the reserve kept for synchronous jobs (from reserveFrom
// to max) marked apart. state is "ok", "reserve", "exhausted" or "".
func budgetGauge(used, maxCalls, reserveFrom int, state string) template.HTML {
	if maxCalls <= 0 {
		return template.HTML(`<span class="muted">no usage reported yet (the first Salesforce answer brings it)</span>`)
	}
	frac := func(v int) float64 { return math.Min(1, math.Max(0, float64(v)/float64(maxCalls))) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="gauge" viewBox="0 0 %d %d" role="img" aria-label="%d of %d API requests used" xmlns="http://www.w3.org/2000/svg">`,
		gaugeW, gaugeH, used, maxCalls)
	fmt.Fprintf(&b, `<rect class="gauge-bg" x="0" y="0" width="%d" height="%d" rx="3"/>`, gaugeW, gaugeH)
	if reserveFrom > 0 {
		rx := gaugeW * frac(reserveFrom)
		fmt.Fprintf(&b, `<rect class="gauge-reserve" x="%.1f" y="0" width="%.1f" height="%d"><title>reserve kept for synchronous jobs: from %d</title></rect>`,
			rx, gaugeW-rx, gaugeH, reserveFrom)
	}
	cls := "gauge-used"
	switch state {
	case "reserve":
		cls += " warn"
	case "exhausted":
		cls += " bad"
	}
	fmt.Fprintf(&b, `<rect class="%s" x="0" y="3" width="%.1f" height="%d" rx="2"/>`, cls, gaugeW*frac(used), gaugeH-6)
	if reserveFrom > 0 {
		fmt.Fprintf(&b, `<line class="gauge-mark" x1="%.1f" y1="0" x2="%.1f" y2="%d"/>`, gaugeW*frac(reserveFrom), gaugeW*frac(reserveFrom), gaugeH)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and constant classes only
}

// strconvFloat writes a fraction in as few digits as it needs (0.2, 0.05).
func strconvFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
