package blocks

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
)

// largestJobs are jobs of about the largest accepted size (1 MiB), in the
// shapes that cost most to decode: many variables, many fields, long
// values, and one refused for having too many entries.
func largestJobs() map[string][]byte {
	jobs := map[string][]byte{}
	var b strings.Builder
	b.WriteString(`{"query":"SELECT Id FROM Contact WHERE Name = '$(v0)'","variables":{`)
	for i := 0; i < MaxVariables; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"v%d":"%s"`, i, strings.Repeat("x", 1000))
	}
	b.WriteString(`}}`)
	jobs["search, 1000 variables of 1 KB"] = []byte(b.String())

	b.Reset()
	b.WriteString(`{"object":"Task","fields":{`)
	for i := 0; i < MaxFields; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"F%d__c":"%s"`, i, strings.Repeat("y", 5000))
	}
	b.WriteString(`}}`)
	jobs["insert, 200 fields of 5 KB"] = []byte(b.String())

	b.Reset()
	b.WriteString(`{"query":"SELECT Id FROM Contact","variables":{`)
	for i := 0; i < 60000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"v%d":%d`, i, i)
	}
	b.WriteString(`}}`)
	jobs["search, 60000 tiny variables (refused)"] = []byte(b.String()[:min(b.Len(), DefaultMaxJobBytes)-2] + `}}`)

	b.Reset()
	b.WriteString(`{"object":"Task","fields":{"Subject":[`)
	for b.Len() < DefaultMaxJobBytes-100 {
		b.WriteString(`1,`)
	}
	b.WriteString(`1]}}`)
	jobs["insert, a field holding a huge array (refused)"] = []byte(b.String())
	return jobs
}

// BenchmarkDecodeLargest decodes each of the largest jobs; bytes/op against
// the job's size is the multiple the README quotes.
func BenchmarkDecodeLargest(b *testing.B) {
	ex := newTestExecutor(b, nil)
	for name, job := range largestJobs() {
		block := sfblocks.Search
		if strings.Contains(name, "insert") {
			block = sfblocks.Insert
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(job)))
			for b.Loop() {
				_, _ = ex.Decode(block, job)
			}
		})
	}
}

// Decoding the largest jobs costs a small multiple of their size, and a
// job refused for its shape costs next to nothing: its limits are checked
// while its bytes are scanned, before any value is materialised.
func TestDecodeCostIsASmallMultipleOfTheJob(t *testing.T) {
	ex := newTestExecutor(t, nil)
	wantErr := map[string]string{
		"search, 60000 tiny variables (refused)":         "variables has",
		"insert, a field holding a huge array (refused)": `field "Subject" must be a string, number, boolean or null`,
	}
	for name, job := range largestJobs() {
		t.Run(name, func(t *testing.T) {
			block := sfblocks.Search
			if strings.Contains(name, "insert") {
				block = sfblocks.Insert
			}
			_, _ = ex.Decode(block, job) // warm caches
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ex.Decode(block, job)
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			if want, refused := wantErr[name]; refused {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				if allocated > 64<<10 {
					t.Errorf("refusing a %d-byte job allocated %d bytes, want at most 64 KiB", len(job), allocated)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if allocated > 8*uint64(len(job)) {
				t.Errorf("decoding a %d-byte job allocated %d bytes (%.1f×), want at most 8×", len(job), allocated, float64(allocated)/float64(len(job)))
			}
		})
	}
}
