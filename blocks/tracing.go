package blocks

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Jobs that share a Salesforce call say so on their spans. The package
// starts no span of its own: the call's span (package salesforce) is a
// child of the job whose context it runs under, the one that leads a
// shared Search or comes first in a coalesced batch of Inserts. Every
// other job of the call links to that job's span, so its trace shows
// which call answered it.

// Link kinds, in the sfblocks.link attribute of a link.
const (
	linkSharedSearch   = "shared_search"
	linkCoalescedBatch = "coalesced_insert"
)

// linkTo links the span in ctx to the job span whose call answered it
// (none when to is not valid) and adds attrs to it.
func linkTo(ctx context.Context, to trace.SpanContext, kind string, attrs ...attribute.KeyValue) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if to.IsValid() {
		span.AddLink(trace.Link{SpanContext: to, Attributes: []attribute.KeyValue{attribute.String("sfblocks.link", kind)}})
	}
	if len(attrs) > 0 {
		span.SetAttributes(attrs...)
	}
}
