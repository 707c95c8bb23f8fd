package otelsetup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/otelsetup/oteltest"
)

// Not parallel: these tests set the process's environment.

func TestOffByDefault(t *testing.T) {
	for _, tt := range []struct {
		name  string
		given map[string]string
	}{
		{"no endpoint", map[string]string{EnvEndpoint: "", EnvTracesEndpoint: ""}},
		{"sdk disabled", map[string]string{EnvEndpoint: "http://127.0.0.1:1", EnvSDKDisabled: "true"}},
		{"exporter none", map[string]string{EnvTracesEndpoint: "http://127.0.0.1:1", EnvTracesExporter: "none"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.given {
				t.Setenv(k, v)
			}
			p, err := FromEnv(context.Background(), "test")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := p.TracerProvider.(noop.TracerProvider); !ok || p.Enabled() || p.Endpoint != "" {
				t.Errorf("provider %T enabled %v endpoint %q, want a noop provider", p.TracerProvider, p.Enabled(), p.Endpoint)
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRefusedConfiguration(t *testing.T) {
	for _, tt := range []struct {
		name  string
		given map[string]string
		want  string
	}{
		{"grpc", map[string]string{EnvEndpoint: "http://127.0.0.1:4317", EnvProtocol: "grpc"}, EnvProtocol},
		{"traces grpc", map[string]string{EnvEndpoint: "http://127.0.0.1:4317", EnvTracesProtocol: "grpc"}, EnvTracesProtocol},
		{"exporter", map[string]string{EnvEndpoint: "http://127.0.0.1:4318", EnvTracesExporter: "zipkin"}, EnvTracesExporter},
		{"not a URL", map[string]string{EnvEndpoint: "collector:4318"}, EnvEndpoint},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.given {
				t.Setenv(k, v)
			}
			_, err := FromEnv(context.Background(), "test")
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) {
				t.Errorf("%q does not name %s", msg, tt.want)
			}
		})
	}
}

// With an endpoint, spans reach the collector over OTLP/HTTP with the
// service's resource, and the endpoint shown drops the URL's user
// information.
func TestExportsToTheEndpoint(t *testing.T) {
	col := oteltest.StartCollector(t)
	t.Setenv(EnvEndpoint, "http://user:hunter2@"+col.Addr())
	t.Setenv(EnvTracesEndpoint, "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	p, err := FromEnv(context.Background(), "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled() || p.Endpoint != "http://"+col.Addr() {
		t.Errorf("enabled %v endpoint %q, want http://%s", p.Enabled(), p.Endpoint, col.Addr())
	}
	_, span := p.Tracer("test").Start(context.Background(), "exported")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := col.Spans()
	if len(got) != 1 || got[0].Name != "exported" {
		t.Fatalf("collector got %+v, want the one span", got)
	}
	for k, want := range map[string]string{"service.name": "sfblocks", "service.version": "v9.9.9", "deployment.environment.name": "test"} {
		if v := got[0].Resource[k]; v != want {
			t.Errorf("resource %s = %q, want %q", k, v, want)
		}
	}
}
