package blocks

import "github.com/sfblocks/sfblocks"

// FailureReply builds the failed reply of job id from err, classified with
// [AsError]. The worker uses it for its own failures (overload, shutdown).
// A nil err gives an INTERNAL failure rather than a reply claiming success.
func FailureReply(id string, err error) *sfblocks.Reply {
	e := AsError(err)
	if e == nil {
		e = &sfblocks.Error{Code: sfblocks.CodeInternal, Message: "failure reply built without an error"}
	}
	return e.Failure(id)
}
