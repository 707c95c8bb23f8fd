package workertest_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestStartNATSWithJetStream(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	if !ns.JetStreamEnabled() {
		t.Fatal("JetStream is off")
	}
	_, js := workertest.JetStream(t, ns)
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatalf("JetStream account info: %v", err)
	}
}

func TestStartNATSOptions(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t, workertest.WithoutJetStream, func(o *server.Options) { o.Username, o.Password = "u", "p" })
	if ns.JetStreamEnabled() {
		t.Error("JetStream is on")
	}
	if _, err := nats.Connect(ns.ClientURL()); err == nil {
		t.Error("connected without the password")
	}
	workertest.Connect(t, ns, nats.UserInfo("u", "p"))
}

func TestRestartableNATSKeepsPortAndStore(t *testing.T) {
	t.Parallel()
	r := workertest.StartRestartableNATS(t)
	url := r.URL()
	_, js := workertest.JetStream(t, r.Server())
	kv, err := js.CreateKeyValue(t.Context(), jetstreamKV("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	if r.URL() != url {
		t.Fatalf("URL after restart = %s, want %s", r.URL(), url)
	}
	_, js = workertest.JetStream(t, r.Server())
	kv, err = js.KeyValue(t.Context(), "kept")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(t.Context(), "k"); err != nil || string(e.Value()) != "v" {
		t.Fatalf("after restart: %v, %v", e, err)
	}
}

func TestStartSim(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{})
	res, err := http.Get(sim.MyDomainURL() + "/services/data/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("versions list: %s", res.Status)
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	go func() {
		for i := 0; i < 3; i++ {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	workertest.WaitFor(t, 10*time.Second, "three increments", func() bool { return n.Load() == 3 })
}

func TestEventually(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		holdsAt time.Duration // from the start; negative: never
		timeout time.Duration
		want    bool
	}{
		{"holds at once", 0, time.Second, true},
		{"holds later", 30 * time.Millisecond, 10 * time.Second, true},
		{"never holds", -1, 50 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			calls := 0
			got := workertest.Eventually(tt.timeout, func() bool {
				calls++
				return tt.holdsAt >= 0 && time.Since(start) >= tt.holdsAt
			})
			took := time.Since(start)
			if got != tt.want {
				t.Fatalf("Eventually = %v after %v and %d calls, want %v", got, took, calls, tt.want)
			}
			if !tt.want && took < tt.timeout {
				t.Errorf("gave up after %v, before the timeout %v", took, tt.timeout)
			}
		})
	}
}

// fatalTB records the message of a Fatalf and ends the goroutine, as
// testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForFailsNamingWhat(t *testing.T) {
	t.Parallel()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		workertest.WaitFor(tb, 20*time.Millisecond, "the reply of job-1", func() bool { return false })
	}()
	<-done
	if !strings.Contains(tb.msg, "the reply of job-1") || !strings.Contains(tb.msg, "20ms") {
		t.Fatalf("failure message %q does not name what was awaited and for how long", tb.msg)
	}
}

func TestLogBuffer(t *testing.T) {
	t.Parallel()
	log, buf := workertest.NewLogger()
	done := make(chan struct{})
	go func() { log.Debug().Str("k", "v").Msg("from a goroutine"); close(done) }()
	<-done
	log.Info().Msg("second")
	lines := buf.Lines()
	if len(lines) != 2 || !strings.Contains(lines[0], `"k":"v"`) || !strings.Contains(lines[1], `"second"`) {
		t.Fatalf("lines = %q", lines)
	}
	if quiet := buf.Logger(zerolog.WarnLevel); quiet.Info().Enabled() {
		t.Error("a warn-level logger logs info")
	}
}

func jetstreamKV(name string) jetstream.KeyValueConfig { return jetstream.KeyValueConfig{Bucket: name} }
