package blocks

import (
	"github.com/sfblocks/sfblocks"
)

// anyAccount accepts every account name: what a worker would say of the
// account is the worker's to say, from its own configuration.
type anyAccount struct{}

func (anyAccount) Lookup(name string) (Account, error) { return Account{Name: name}, nil }

// checker decodes jobs with the worker's defaults and no accounts.
var checker, _ = NewExecutor(anyAccount{})

// Check validates a job of block as a worker's [Executor.Decode] does with
// its defaults ([DefaultMaxJobBytes], the same keys, limits, templates and
// statement building), short of its account, which only the worker's
// configuration knows. A client calls it to refuse, before sending, a job
// the worker would refuse: the error is the *[sfblocks.Error] the worker
// would answer, INVALID_REQUEST naming the problem.
func Check(block sfblocks.Block, payload []byte) error {
	_, err := checker.Decode(block, payload)
	return err
}
