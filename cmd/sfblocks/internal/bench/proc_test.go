package bench

import (
	"os"
	"runtime"
	"testing"
)

// TestProcReadings reads this test process's own /proc entries, which are
// what a run reads of its workers.
func TestProcReadings(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		if peakRSS(os.Getpid()) != -1 || cpuTime(os.Getpid()) != -1 {
			t.Error("readings outside Linux, want -1 (n/a)")
		}
		return
	}
	// Spend a little CPU so there is some to see.
	x := 0
	for i := range 50_000_000 {
		x ^= i
	}
	_ = x
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"this process", os.Getpid(), true},
		{"no such process", 1 << 30, false},
	}
	for _, tt := range tests {
		rss, cpu := peakRSS(tt.pid), cpuTime(tt.pid)
		if tt.ok && (rss < 1<<20 || cpu <= 0) || !tt.ok && (rss != -1 || cpu != -1) {
			t.Errorf("%s: peak RSS %d bytes, CPU %v; want known %v", tt.name, rss, cpu, tt.ok)
		}
	}
}
