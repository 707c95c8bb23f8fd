package blocks

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// fakeAPI is a SalesforceAPI whose answers the test sets; it records the
// statements and records it was sent.
type fakeAPI struct {
	mu      sync.Mutex
	queries []string
	creates []map[string]any
	upserts []string // object/field/value

	query  func(ctx context.Context, soql string) (*salesforce.QueryResult, error)
	search func(ctx context.Context, sosl string) (*salesforce.SearchResult, error)
	save   func(ctx context.Context, fields map[string]any) (*salesforce.SaveResult, error)
}

func (f *fakeAPI) Query(ctx context.Context, soql string, _ ...salesforce.QueryOption) (*salesforce.QueryResult, error) {
	f.mu.Lock()
	f.queries = append(f.queries, soql)
	f.mu.Unlock()
	if f.query == nil {
		return &salesforce.QueryResult{Done: true}, nil
	}
	return f.query(ctx, soql)
}

func (f *fakeAPI) Search(ctx context.Context, sosl string) (*salesforce.SearchResult, error) {
	f.mu.Lock()
	f.queries = append(f.queries, sosl)
	f.mu.Unlock()
	if f.search == nil {
		return &salesforce.SearchResult{}, nil
	}
	return f.search(ctx, sosl)
}

func (f *fakeAPI) Create(ctx context.Context, object string, fields map[string]any) (*salesforce.SaveResult, error) {
	f.mu.Lock()
	f.creates = append(f.creates, fields)
	f.mu.Unlock()
	if f.save == nil {
		return &salesforce.SaveResult{ID: "003000000000001AAA", Success: true, Created: true}, nil
	}
	return f.save(ctx, fields)
}

func (f *fakeAPI) Upsert(ctx context.Context, object, field, value string, fields map[string]any) (*salesforce.SaveResult, error) {
	f.mu.Lock()
	f.creates = append(f.creates, fields)
	f.upserts = append(f.upserts, object+"/"+field+"/"+value)
	f.mu.Unlock()
	if f.save == nil {
		return &salesforce.SaveResult{ID: "003000000000001AAA", Success: true, Created: true}, nil
	}
	return f.save(ctx, fields)
}

// newTestExecutor returns an executor whose default account "main" uses
// api (a fresh fakeAPI when nil) and whose generated ids are gen-1, gen-2...
func newTestExecutor(t testing.TB, api SalesforceAPI, opts ...Option) *Executor {
	t.Helper()
	if api == nil {
		api = &fakeAPI{}
	}
	var n atomic.Int64
	opts = append([]Option{WithIDGenerator(func() string { return fmt.Sprintf("gen-%d", n.Add(1)) })}, opts...)
	ex, err := NewExecutor(StaticAccounts{Default: "main", Clients: map[string]SalesforceAPI{"main": api}}, opts...)
	if err != nil {
		t.Fatalf("NewExecutor: %v", err)
	}
	return ex
}

func rec(typ string, kv ...any) salesforce.Record {
	r := salesforce.Record{"attributes": map[string]any{"type": typ, "url": "/services/data/v66.0/sobjects/" + typ + "/x"}}
	for i := 0; i < len(kv); i += 2 {
		r[kv[i].(string)] = kv[i+1]
	}
	return r
}
