// Package otelsetup builds the OpenTelemetry tracer provider of sfblocks'
// commands from the standard OTEL_* environment variables. It is the only
// package that imports the OpenTelemetry SDK and its OTLP exporter: the
// worker, blocks, the Salesforce client and the token cache take a
// trace.TracerProvider and know nothing of where spans go.
//
// Tracing is off unless an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT):
// then spans are batched and sent over OTLP/HTTP (protobuf, or JSON with
// OTEL_EXPORTER_OTLP_PROTOCOL=http/json). Off, [FromEnv] gives a
// noop.TracerProvider, which the worker and the Salesforce client
// recognise and start no span at all for. OTEL_SDK_DISABLED=true and
// OTEL_TRACES_EXPORTER=none turn it off even with an endpoint.
//
// The exporter itself reads the rest of its configuration from the
// environment (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION,
// _INSECURE, _CERTIFICATE...), the SDK its sampler (OTEL_TRACES_SAMPLER,
// default parentbased_always_on: a job is sampled when its caller's trace
// is) and its batching (OTEL_BSP_*), and the resource takes
// OTEL_SERVICE_NAME (default "sfblocks") and OTEL_RESOURCE_ATTRIBUTES.
package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The environment variables [FromEnv] reads itself; the exporter and the
// SDK read the others.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// ErrConfig is wrapped by every error of [FromEnv]: an OTEL_* variable
// holds a value sfblocks cannot export with. The message names the
// variable and the values it takes.
var ErrConfig = errors.New("tracing configuration")

// Provider is the tracer provider of one command, with what it takes to
// flush it at exit.
type Provider struct {
	trace.TracerProvider
	// Endpoint is where spans go, without any user information the URL
	// held: safe to log. Empty when tracing is off.
	Endpoint string
	sdk      *sdktrace.TracerProvider
}

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// Shutdown sends the spans still batched and stops the exporter; ctx
// bounds the wait. A provider that is off has nothing to do.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// FromEnv builds the provider the environment asks for, naming the
// service version in its resource. It fails with [ErrConfig] for a
// protocol or exporter it does not support (gRPC: use http/protobuf, which
// collectors serve on port 4318), never because the collector is down:
// spans that cannot be sent are dropped, and the SDK's error handler says
// so.
func FromEnv(ctx context.Context, version string) (*Provider, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvSDKDisabled)), "true") {
		return off(), nil
	}
	switch exp := strings.TrimSpace(os.Getenv(EnvTracesExporter)); exp {
	case "", "otlp":
	case "none":
		return off(), nil
	default:
		return nil, fmt.Errorf("%w: %s=%q: sfblocks exports traces with otlp (over HTTP) or none", ErrConfig, EnvTracesExporter, exp)
	}
	endpoint, name := firstSet(EnvTracesEndpoint, EnvEndpoint)
	if endpoint == "" {
		return off(), nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %s=%q: want a URL such as http://collector:4318", ErrConfig, name, endpoint)
	}
	if proto, pname := firstSet(EnvTracesProtocol, EnvProtocol); proto != "" && proto != "http/protobuf" && proto != "http/json" {
		return nil, fmt.Errorf("%w: %s=%q: sfblocks sends OTLP over HTTP: use http/protobuf (the collector's port 4318) or http/json", ErrConfig, pname, proto)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: OTLP exporter: %w", ErrConfig, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "sfblocks"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("%w: resource (OTEL_RESOURCE_ATTRIBUTES): %w", ErrConfig, err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	u.User = nil
	return &Provider{TracerProvider: tp, Endpoint: u.String(), sdk: tp}, nil
}

func off() *Provider { return &Provider{TracerProvider: noop.NewTracerProvider()} }

// firstSet returns the value and name of the first of names that is set
// to something other than blanks.
func firstSet(names ...string) (value, name string) {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v, n
		}
	}
	return "", ""
}
