package sfblocks

// Block names a scenario block; it is the last token of the block's NATS
// subjects (sfblocks.search, sfblocks.jobs.insert).
type Block string

const (
	// Search runs a SOQL or SOSL statement and returns the records found.
	Search Block = "search"
	// Insert creates one record, or upserts it by an external ID.
	Insert Block = "insert"
)

// Blocks returns every block a worker serves, in a fresh slice the caller
// may keep.
func Blocks() []Block { return []Block{Search, Insert} }

// Valid reports whether b is one of [Blocks].
func (b Block) Valid() bool { return b == Search || b == Insert }

// Status is a reply's status: the block's exit, as a scenario branches on it.
type Status string

const (
	// StatusOK: the search found records, or the insert saved its record.
	StatusOK Status = "ok"
	// StatusNoData: the search ran and found nothing (count 0).
	StatusNoData Status = "no_data"
	// StatusFailed: the job failed; Reply.Error says why.
	StatusFailed Status = "failed"
)
