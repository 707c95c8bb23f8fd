package main

import (
	"context"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/otelsetup"
	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/otelsetup/oteltest"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, `sfblocks call` and `sfblocks
// serve` export one trace: call's client span, the worker's job span under
// it, and the job's Salesforce call under that (its token was fetched at
// start, so the job waits for none). Not parallel: it sets the process's
// environment.
func TestServeAndCallExportTraces(t *testing.T) {
	col := oteltest.StartCollector(t)
	t.Setenv(otelsetup.EnvEndpoint, "http://"+col.Addr())
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // ms: the worker's spans go out while the test waits
	ns := workertest.StartNATS(t)
	url := ns.ClientURL()
	_, logs := startServe(t, "--nats-url", url, "--sim-addr", "127.0.0.1:0")
	if got := loggedField(logs, "exporting traces over OTLP/HTTP", "endpoint"); got != "http://"+col.Addr() {
		t.Errorf("serve logged the endpoint %q, want http://%s", got, col.Addr())
	}
	code, out, errOut := runCmd(t, context.Background(), "call", "search", "--nats-url", url,
		"--query", "SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'", "--var", "ANI=+1 415 555 0100")
	if code != 0 {
		t.Fatalf("call: exit %d\n%s\n%s", code, out, errOut)
	}

	find := func(name, parent string) (oteltest.Span, bool) {
		for _, s := range col.Spans() {
			if s.Name == name && (parent == "" || s.ParentSpanID == parent) {
				return s, true
			}
		}
		return oteltest.Span{}, false
	}
	var send, job, query oteltest.Span
	ok := workertest.Eventually(20*time.Second, func() bool {
		var ok bool
		if send, ok = find("send sfblocks.search", ""); !ok {
			return false
		}
		if job, ok = find("process sfblocks.search", send.SpanID); !ok {
			return false
		}
		query, ok = find("GET /query", job.SpanID)
		return ok
	})
	if !ok {
		var names []string
		for _, s := range col.Spans() {
			names = append(names, s.Name+" "+s.SpanID+"<-"+s.ParentSpanID)
		}
		t.Fatalf("no call -> job -> Salesforce call chain among the spans %v", names)
	}
	if send.Kind != tracepb.Span_SPAN_KIND_CLIENT || job.Kind != tracepb.Span_SPAN_KIND_SERVER || query.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("kinds: send %v job %v query %v", send.Kind, job.Kind, query.Kind)
	}
	for _, s := range []oteltest.Span{job, query} {
		if s.TraceID != send.TraceID {
			t.Errorf("%s is in trace %s, not the call's %s", s.Name, s.TraceID, send.TraceID)
		}
	}
	if job.Resource["service.name"] != "sfblocks" || job.Attributes["sfblocks.account"] != "dev" || query.Attributes["sfblocks.account"] != "dev" {
		t.Errorf("job resource %v attributes %v; query attributes %v", job.Resource, job.Attributes, query.Attributes)
	}
	for _, s := range col.Spans() {
		for _, secret := range []string{sfsim.DefaultClientSecret, "+1 415 555 0100", "Ada Byron", "Bearer"} {
			if strings.Contains(string(s.Raw), secret) {
				t.Errorf("span %q holds %q", s.Name, secret)
			}
		}
	}
}

// The commands that trace say how to turn it on.
func TestTracingHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"serve", "--help"}, {"call", "search", "--help"}, {"dlq", "replay", "--help"}} {
		code, out, errOut := runCmd(t, context.Background(), args...)
		if code != 0 || !strings.Contains(out+errOut, otelsetup.EnvEndpoint) {
			t.Errorf("%v: exit %d, help does not name %s:\n%s%s", args, code, otelsetup.EnvEndpoint, out, errOut)
		}
	}
}
