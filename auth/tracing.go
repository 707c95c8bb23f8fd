package auth

import (
	"context"
	"net/url"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// Token waits are traced: a caller that finds no usable token in this
// process waits in a span of its own, "sfblocks.token.wait", a child of
// its job's span. The one fetch those callers share (singleflight) is
// "sfblocks.token.fetch", a child of the first caller's wait; the others'
// waits link to it. Inside the fetch, "sfblocks.token.lease" is the wait
// for the fleet's refresh lease (another worker may be refreshing), and
// each request to the token endpoint is a client span,
// "POST /services/oauth2/token". A token found in memory costs no span.
//
// Attributes name the account, the grant type, the outcome and the OAuth
// error code (invalid_grant...); never a token, a secret, a code or
// Salesforce's error description.

// tracerName is the instrumentation scope of the cache's spans.
const tracerName = "github.com/sfblocks/sfblocks/auth"

func (c *Cache) tracerFor() trace.Tracer {
	tp := c.opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// fetched is a shared fetch's result with the fetch's span context, which
// the callers that joined it link to.
type fetched struct {
	tok *oauth2.Token
	sc  trace.SpanContext
	// leader is the wait span of the caller that ran the fetch (its
	// parent), which needs no link to it.
	leader trace.SpanID
}

// Span outcomes, in sfblocks.token.outcome.
const (
	outcomeStore     = "store"     // the store held a usable token
	outcomeOther     = "other"     // another worker refreshed while this one waited for the lease
	outcomeRefreshed = "refreshed" // this worker refreshed it
)

func accountAttr(a *Account) attribute.KeyValue { return attribute.String("sfblocks.account", a.Name) }

// setOutcome notes a fetch's outcome on span.
func setOutcome(span trace.Span, outcome string) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("sfblocks.token.outcome", outcome))
	}
}

// failSpan marks span failed with err's code alone.
func failSpan(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	code := CodeOf(err)
	if code == "" {
		code = CodeUnavailable
	}
	span.SetAttributes(attribute.String("sfblocks.auth.code", code))
	span.SetStatus(codes.Error, code)
}

// startRequest starts the span of one token request.
func (c *Cache) startRequest(ctx context.Context, a *Account, grant string, attempt int) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, "POST /services/oauth2/token", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		attrs := []attribute.KeyValue{accountAttr(a), attribute.String("http.request.method", "POST"),
			attribute.String("url.template", "/services/oauth2/token"), attribute.String("oauth.grant_type", grant)}
		if u, err := url.Parse(a.TokenURL()); err == nil {
			attrs = append(attrs, attribute.String("server.address", u.Hostname()))
		}
		if attempt > 1 {
			attrs = append(attrs, attribute.Int("http.request.resend_count", attempt-1))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// endRequest records a token request's answer: its HTTP status and OAuth
// error code when Salesforce answered, the error's code otherwise.
func endRequest(span trace.Span, err error) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if err == nil {
		span.SetAttributes(attribute.Int("http.response.status_code", 200))
		return
	}
	var te *tokenEndpointError
	if ae, ok := err.(*Error); ok {
		if t, ok := ae.Err.(*tokenEndpointError); ok {
			te = t
		}
	}
	if te != nil {
		if te.Status > 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", te.Status))
		}
		if te.Code != "" {
			span.SetAttributes(attribute.String("oauth.error", te.Code))
		}
	}
	failSpan(span, err)
}
