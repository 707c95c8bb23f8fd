package console

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var axisRe = regexp.MustCompile(`<text class="axis" x="46" y="[0-9.]+" text-anchor="end">([^<]+)</text>`)

// The y axis goes up to a round maximum in round steps.
func TestLineChartAxis(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		given float64 // the series' maximum
		want  string  // the axis labels, bottom up
	}{
		{"one", 0.7, "0 0.2 0.4 0.6 0.8 1"},
		{"two", 1.3, "0 0.5 1 1.5 2"},
		{"five", 4.1, "0 1 2 3 4 5"},
		{"fifty", 31, "0 10 20 30 40 50"},
		{"thousands", 1700, "0 500 1k 1.5k 2k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(lineChart("t", "u", from, from.Add(time.Minute), []line{{Name: "a", Class: "s0",
				Points: []xy{{from.Add(10 * time.Second), tt.given / 2}, {from.Add(20 * time.Second), tt.given}}}}))
			var got []string
			for _, m := range axisRe.FindAllStringSubmatch(svg, -1) {
				got = append(got, m[1])
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("labels %q, want %q", strings.Join(got, " "), tt.want)
			}
			if !strings.Contains(svg, `<polyline class="series s0"`) {
				t.Errorf("no series drawn:\n%s", svg)
			}
		})
	}
}
