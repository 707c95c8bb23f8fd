// Package client is the Go client of the sfblocks worker: the scenario
// runtime uses it to run the Search and Insert blocks over NATS
// request/reply.
//
//	c, err := client.New(nc)
//	reply, err := c.Search(ctx, &sfblocks.SearchRequest{Query: "SELECT Id FROM Contact WHERE Phone = '$(phone)'", Variables: map[string]any{"phone": "+33..."}})
//	switch {
//	case errors.Is(err, sfblocks.ErrTimeout): // failure exit, maybe retry
//	case err != nil: // failure exit
//	case reply.Status == sfblocks.StatusNoData: // "no data" exit
//	default: // "ok" exit: reply.First, reply.Records
//	}
//
// A job that failed returns both its reply and a *sfblocks.Error carrying the
// reply's code, so errors.Is matches on the code. Transport problems (no
// worker listening, the context's deadline) also return a *sfblocks.Error, with
// codes SALESFORCE_UNAVAILABLE and TIMEOUT, wrapping [ErrNoWorkers] or
// [ErrTimeout].
//
// Durable jobs survive worker crashes and NATS restarts: [Client.DoDurable]
// publishes the job to the JetStream work queue ("<prefix>.jobs.<block>",
// job id in Nats-Msg-Id, reply inbox in the Reply-To header) and waits for
// the reply; [Client.PublishDurable] only publishes, and [Client.Result]
// reads a finished job's kept result by id.
//
// Every job the client sends carries ctx's W3C trace context in the
// traceparent and tracestate headers, under a span of its own ("send
// <subject>") when the client's tracer provider records (see
// [WithTracerProvider]), so the worker's spans join the caller's trace.
package client
