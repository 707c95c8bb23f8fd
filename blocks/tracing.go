package blocks

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// Jobs that share a Salesforce call say so on their spans. The package
// starts no span of its own: the call's span (package salesforce) is a
// child of the job whose context it runs under, the one that leads a
// shared Search or comes first in a coalesced batch of Inserts. Every
// other job of the call links to that job's span, so its trace shows
// which call answered it; a coalesced batch's call span also links to
// each of the other jobs' spans, so the call names every job it served.

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

// traceBatch links a coalesced batch's jobs and its call: the call runs
// under ctx (the first job's values), so its span is the first job's
// child; it links to every other job's span, and each of those links to
// the first job's span. Every job's span notes the batch's size.
func traceBatch(ctx context.Context, batch []*saveReq) context.Context {
	first := trace.SpanContextFromContext(batch[0].ctx)
	size := attribute.Int("sfblocks.insert.batch_size", len(batch))
	linkTo(batch[0].ctx, trace.SpanContext{}, "", size)
	kind := []attribute.KeyValue{attribute.String("sfblocks.link", linkCoalescedBatch)}
	links := make([]trace.Link, 0, len(batch)-1)
	for _, r := range batch[1:] {
		linkTo(r.ctx, first, linkCoalescedBatch, size)
		links = append(links, trace.Link{SpanContext: trace.SpanContextFromContext(r.ctx), Attributes: kind})
	}
	return salesforce.ContextWithSpanLinks(ctx, links...)
}
