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

// Accounts resolves a job's account name ("" means the default account) to
// its resolved name and client. An unknown name must give an error that
// [AsError] maps to [sfblocks.CodeUnknownAccount], such as
// &Error{Code: CodeUnknownAccount}. Implementations must be safe for
// concurrent use.
type Accounts interface {
	Lookup(name string) (resolvedName string, api SalesforceAPI, err error)
}

// StaticAccounts is a map-based [Accounts]; cmd builds one from the auth
// configuration. It must not be modified once in use.
type StaticAccounts struct {
	// Default is the account used by jobs that name none. When empty, such
	// jobs fail with UNKNOWN_ACCOUNT unless Clients has exactly one entry.
	Default string
	// Clients maps account names to their clients.
	Clients map[string]SalesforceAPI
}

// Lookup implements [Accounts].
func (a StaticAccounts) Lookup(name string) (string, SalesforceAPI, error) {
	if name == "" {
		name = a.Default
		if name == "" && len(a.Clients) == 1 {
			for only := range a.Clients {
				name = only
			}
		}
		if name == "" {
			return "", nil, &sfblocks.Error{Code: sfblocks.CodeUnknownAccount,
				Message: "the job names no account and no default account is configured; set account in the job"}
		}
	}
	api, ok := a.Clients[name]
	if !ok || api == nil {
		return "", nil, &sfblocks.Error{Code: sfblocks.CodeUnknownAccount,
			Message: "account " + quoteName(name) + " is not configured; use one of the worker's configured accounts"}
	}
	return name, api, nil
}
