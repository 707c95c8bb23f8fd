package salesforce

import (
	"context"
	"errors"
	"net"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Each HTTP request to the REST API is one client span, a child of the
// span in the call's context (the worker's job span): named by method and
// path template ("GET /query", "PATCH /sobjects/{object}/{field}/{value}"),
// with the method, template, host, status, API version, sObject and
// Salesforce's errorCode as attributes. The URL is never recorded: its
// path may hold an external ID value and its query the statement, values
// and all; nor is a header (the bearer token), a body or Salesforce's
// message (which may quote values).

// tracerName is the instrumentation scope of the client's spans.
const tracerName = "github.com/sfblocks/sfblocks/blocks/salesforce"

// WithTracerProvider sets the provider of the client's request spans.
// Defaults to otel.GetTracerProvider(), which records nothing unless the
// program installed a provider. A noop.TracerProvider turns them off: no
// span is started at all.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) error {
		if tp == nil {
			return errors.New("salesforce: nil tracer provider (omit the option to use otel's global provider)")
		}
		c.tracer = nil
		if _, off := tp.(noop.TracerProvider); !off {
			c.tracer = tp.Tracer(tracerName)
		}
		return nil
	}
}

// noSpan stands for a request's span when tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

// startSpan starts the span of one request, none when tracing is off.
func (c *Client) startSpan(ctx context.Context, r request) (context.Context, trace.Span) {
	if c.tracer == nil {
		return ctx, noSpan
	}
	if links, ok := ctx.Value(linksKey{}).([]trace.Link); ok {
		return c.tracer.Start(ctx, r.spanName(), trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...))
	}
	return c.tracer.Start(ctx, r.spanName(), clientOpts...)
}

// linksKey is the context key of [ContextWithSpanLinks].
type linksKey struct{}

// ContextWithSpanLinks returns ctx whose request spans link to links, as
// well as being children of ctx's span: a call made for several jobs at
// once (package blocks' coalesced Inserts) names every job it serves.
// Links to invalid span contexts are dropped; with none left, ctx is
// returned as it is.
func ContextWithSpanLinks(ctx context.Context, links ...trace.Link) context.Context {
	valid := make([]trace.Link, 0, len(links))
	for _, l := range links {
		if l.SpanContext.IsValid() {
			valid = append(valid, l)
		}
	}
	if len(valid) == 0 {
		return ctx
	}
	return context.WithValue(ctx, linksKey{}, valid)
}

// WithSpanAttributes adds attrs to every request span of the client, such
// as the integration account's name. They must hold no secret.
func WithSpanAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *Client) error {
		c.spanAttrs = append(c.spanAttrs, attrs...)
		return nil
	}
}

func defaultTracer() trace.Tracer { return otel.GetTracerProvider().Tracer(tracerName) }

// clientOpts are a package-level slice, so a span start allocates no
// options.
var clientOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// spanName is the request's span name: method and path template.
func (r request) spanName() string {
	route := r.route
	if route == "" {
		route = "{path}" // a request added without a route still leaks nothing
	}
	return r.method + " " + route
}

// startAttrs are a request span's attributes known before it is sent.
func (c *Client) startAttrs(span trace.Span, r request, host string, resend int) {
	route := r.route
	if route == "" {
		route = "{path}"
	}
	attrs := append([]attribute.KeyValue{
		attribute.String("http.request.method", r.method),
		attribute.String("url.template", route),
		attribute.String("salesforce.api_version", c.version),
	}, c.spanAttrs...)
	if h, port, err := net.SplitHostPort(host); err == nil {
		attrs = append(attrs, attribute.String("server.address", h))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	} else if host != "" {
		attrs = append(attrs, attribute.String("server.address", host))
	}
	if r.object != "" {
		attrs = append(attrs, attribute.String("salesforce.sobject", r.object))
	}
	if resend > 0 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", resend))
	}
	span.SetAttributes(attrs...)
}

// endSpan records the request's outcome: the status, and for a failure
// its code alone. err's message is never recorded.
func endSpan(span trace.Span, status int, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if status > 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	var apiErr *APIError
	var te *transportError
	switch {
	case errors.As(err, &apiErr):
		span.SetAttributes(attribute.String("salesforce.error_code", apiErr.ErrorCode),
			attribute.String("error.type", strconv.Itoa(apiErr.StatusCode)))
		span.SetStatus(codes.Error, apiErr.ErrorCode)
	case errors.As(err, &te):
		kind := "transport"
		if ne, ok := te.err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			kind = "timeout"
		}
		span.SetAttributes(attribute.String("error.type", kind))
		span.SetStatus(codes.Error, kind)
	case err != nil:
		span.SetAttributes(attribute.String("error.type", "client"))
		span.SetStatus(codes.Error, "client")
	}
	span.End()
}
