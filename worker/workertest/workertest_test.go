package workertest_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
