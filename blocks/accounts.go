package blocks

import (
	"context"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// SalesforceAPI is what a block needs of a Salesforce client;
// *salesforce.Client satisfies it. Implementations must be safe for
// concurrent use and return errors that [salesforce.Classify] understands.
type SalesforceAPI interface {
	Query(ctx context.Context, soql string, opts ...salesforce.QueryOption) (*salesforce.QueryResult, error)
	Search(ctx context.Context, sosl string) (*salesforce.SearchResult, error)
	Create(ctx context.Context, object string, fields map[string]any) (*salesforce.SaveResult, error)
	Upsert(ctx context.Context, object, field, value string, fields map[string]any) (*salesforce.SaveResult, error)
}

var _ SalesforceAPI = (*salesforce.Client)(nil)

// Account is one integration account as jobs use it.
type Account struct {
	// Name is the account's configured name.
	Name string
	// API is the account's Salesforce client.
	API SalesforceAPI
	// IdempotencyField, when set, is a unique External ID text field (for
	// example SFBlocks_Job_Id__c) that the org's admin added to every object
	// the scenarios insert into. Every Insert without external_id is then
	// sent as an upsert on it, keyed on the job's identity
	// ([IdempotencyValue]), so that running the job again can only find the
	// record it made: exactly once by construction.
	IdempotencyField string
}

// Accounts resolves a job's account name ("" means the default account) to
// the account. An unknown name must give an error that [AsError] maps to
// [sfblocks.CodeUnknownAccount], such as &sfblocks.Error{Code:
// sfblocks.CodeUnknownAccount}. Implementations must be safe for concurrent
// use.
type Accounts interface {
	Lookup(name string) (Account, error)
}

// StaticAccounts is a map-based [Accounts]; cmd builds one from the auth
// configuration. It must not be modified once in use.
type StaticAccounts struct {
	// Default is the account used by jobs that name none. When empty, such
	// jobs fail with UNKNOWN_ACCOUNT unless Clients has exactly one entry.
	Default string
	// Clients maps account names to their clients.
	Clients map[string]SalesforceAPI
	// IdempotencyFields maps account names to their idempotency field (see
	// [Account.IdempotencyField]); an account without an entry has none.
	IdempotencyFields map[string]string
}

// Lookup implements [Accounts].
func (a StaticAccounts) Lookup(name string) (Account, error) {
	if name == "" {
		name = a.Default
		if name == "" && len(a.Clients) == 1 {
			for only := range a.Clients {
				name = only
			}
		}
		if name == "" {
			return Account{}, &sfblocks.Error{Code: sfblocks.CodeUnknownAccount,
				Message: "the job names no account and no default account is configured; set account in the job"}
		}
	}
	api, ok := a.Clients[name]
	if !ok || api == nil {
		return Account{}, &sfblocks.Error{Code: sfblocks.CodeUnknownAccount,
			Message: "account " + quoteName(name) + " is not configured; use one of the worker's configured accounts"}
	}
	return Account{Name: name, API: api, IdempotencyField: a.IdempotencyFields[name]}, nil
}
