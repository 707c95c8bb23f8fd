package sfblocks

// Names on the bus: the defaults every worker and client starts from.
const (
	// DefaultPrefix is the subjects' default prefix: jobs arrive on
	// "sfblocks.search" and "sfblocks.insert", durable jobs on
	// "sfblocks.jobs.search" and "sfblocks.jobs.insert".
	DefaultPrefix = "sfblocks"
	// DefaultJobsStream is the JetStream work-queue stream capturing the
	// durable job subjects.
	DefaultJobsStream = "SFBLOCKS_JOBS"
	// DefaultResultsBucket is the JetStream KV bucket keeping the results of
	// finished jobs, as [KeptResult] under [JobIdentity.Key].
	DefaultResultsBucket = "sfblocks_results"
	// DefaultAttemptsBucket is the KV bucket keeping the failure state of
	// durable jobs being retried, under [JobIdentity.Key].
	DefaultAttemptsBucket = "sfblocks_attempts"
	// DefaultDLQStream is the dead-letter stream capturing
	// "<prefix>.dlq.<block>.<job key>".
	DefaultDLQStream = "SFBLOCKS_DLQ"
	// DefaultStatusBucket is the KV bucket each worker reports its view of
	// every account to (`sfblocks status`).
	DefaultStatusBucket = "sfblocks_status"
)

// Header names of job messages.
const (
	// HeaderReplyTo carries the subject a durable job's reply goes to:
	// JetStream keeps no requester reply subject. A job without it still
	// runs; its result is only kept.
	HeaderReplyTo = "Reply-To"
	// HeaderMsgID is JetStream's Nats-Msg-Id: the job id, used for
	// duplicate detection within the stream's duplicate window.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderJobID carries the job id when the payload has none of its own;
	// replays set it. Workers key results and failure state by the
	// payload's id first, then this header, then Nats-Msg-Id.
	HeaderJobID = "Sfblocks-Job-Id"
	// HeaderReplayOf marks a replay: the stream sequence of the dead letter
	// it replays. A replay ignores a kept failed result (the job really runs
	// again) but is still answered from a kept success.
	HeaderReplayOf = "Sfblocks-Replay-Of"
	// HeaderReplays is how many times the job was replayed before, carried
	// into its next dead letter.
	HeaderReplays = "Sfblocks-Replays"
	// HeaderTraceParent and HeaderTraceState are the W3C Trace Context
	// headers (https://www.w3.org/TR/trace-context/). A job that carries
	// them, on either path, is traced as a child of that context; the Go
	// client sets them from the context it is given.
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
	// HeaderReplayTraceParent carries, on a replayed job, the W3C
	// traceparent of the run it replays ([DeadLetter.TraceParent]). The
	// replay's own traceparent is the replayer's context; its job span
	// links to this one instead of continuing the original's trace.
	HeaderReplayTraceParent = "Sfblocks-Replay-Traceparent"
)

// Subject returns the subject of block's synchronous jobs, e.g.
// "sfblocks.search".
func Subject(prefix string, block Block) string { return prefix + "." + string(block) }

// JobsSubject returns the subject of block's durable jobs, e.g.
// "sfblocks.jobs.insert".
func JobsSubject(prefix string, block Block) string { return prefix + ".jobs." + string(block) }

// DLQSubject returns the subject of a job's dead letter:
// "<prefix>.dlq.<job.Key()>". The stream keeps one message per subject, so
// a job has at most one dead letter, its newest.
func DLQSubject(prefix string, job JobIdentity) string {
	return prefix + ".dlq." + job.Key()
}
