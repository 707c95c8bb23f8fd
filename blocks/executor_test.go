package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

func TestRunSearch(t *testing.T) {
	ada := rec("Contact", "Id", "003A", "Name", "Ada Byron",
		"Account", map[string]any{"attributes": map[string]any{"type": "Account"}, "Name": "Acme Corporation"})
	bob := rec("Contact", "Id", "003B", "Name", "Bob", "Account", nil)
	tests := []struct {
		name       string
		given      string
		query      func(context.Context, string) (*salesforce.QueryResult, error)
		search     func(context.Context, string) (*salesforce.SearchResult, error)
		wantStatus sfblocks.Status
		wantCount  int
		wantTrunc  bool
		wantFirst  string // JSON of first
	}{
		{name: "records", given: `{"query":"SELECT Id, Name, Account.Name FROM Contact"}`,
			query: func(context.Context, string) (*salesforce.QueryResult, error) {
				return &salesforce.QueryResult{TotalSize: 2, Done: true, Records: []salesforce.Record{ada, bob}}, nil
			},
			wantStatus: sfblocks.StatusOK, wantCount: 2,
			wantFirst: `{"Account":{"Name":"Acme Corporation"},"Id":"003A","Name":"Ada Byron"}`},
		{name: "no data", given: `{"query":"SELECT Id FROM Contact WHERE Phone = '$(p)'","variables":{"p":"x"}}`,
			query: func(context.Context, string) (*salesforce.QueryResult, error) {
				return &salesforce.QueryResult{TotalSize: 0, Done: true, Records: []salesforce.Record{}}, nil
			},
			wantStatus: sfblocks.StatusNoData, wantCount: 0},
		{name: "count query", given: `{"query":"SELECT COUNT() FROM Contact"}`,
			query: func(context.Context, string) (*salesforce.QueryResult, error) {
				return &salesforce.QueryResult{TotalSize: 312, Done: true}, nil
			},
			wantStatus: sfblocks.StatusOK, wantCount: 312},
		{name: "truncated", given: `{"query":"SELECT Id FROM Contact","max_records":1}`,
			query: func(context.Context, string) (*salesforce.QueryResult, error) {
				return &salesforce.QueryResult{TotalSize: 2, Done: false, Records: []salesforce.Record{bob}}, nil
			},
			wantStatus: sfblocks.StatusOK, wantCount: 1, wantTrunc: true, wantFirst: `{"Account":null,"Id":"003B","Name":"Bob"}`},
		{name: "sosl trimmed to max_records", given: `{"language":"sosl","query":"FIND {Ada} RETURNING Contact(Id, Name)","max_records":1}`,
			search: func(context.Context, string) (*salesforce.SearchResult, error) {
				return &salesforce.SearchResult{SearchRecords: []salesforce.Record{ada, bob}}, nil
			},
			wantStatus: sfblocks.StatusOK, wantCount: 1, wantTrunc: true,
			wantFirst: `{"Account":{"Name":"Acme Corporation"},"Id":"003A","Name":"Ada Byron"}`},
		{name: "sosl none", given: `{"language":"sosl","query":"FIND {zzz} RETURNING Contact(Id)"}`,
			wantStatus: sfblocks.StatusNoData, wantCount: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{query: tt.query, search: tt.search}
			ex := newTestExecutor(t, api)
			r := ex.Handle(context.Background(), sfblocks.Search, []byte(tt.given))
			if r.Status != tt.wantStatus || r.Count == nil || *r.Count != tt.wantCount || r.Truncated != tt.wantTrunc {
				t.Fatalf("reply = %+v (error %+v)", r, r.Error)
			}
			if r.Account != "main" || r.ID != "gen-1" || r.Error != nil {
				t.Errorf("reply header = %+v", r)
			}
			if len(r.Records) > 0 && r.Count != nil && len(r.Records) != *r.Count {
				t.Errorf("%d records, count %d", len(r.Records), *r.Count)
			}
			if tt.wantFirst == "" {
				if r.First != nil {
					t.Errorf("first = %v, want none", r.First)
				}
				return
			}
			got, _ := json.Marshal(r.First)
			if string(got) != tt.wantFirst {
				t.Errorf("first = %s, want %s", got, tt.wantFirst)
			}
			all, _ := json.Marshal(r)
			if strings.Contains(string(all), "attributes") {
				t.Errorf("reply still holds attributes: %s", all)
			}
		})
	}
}

func TestRunInsert(t *testing.T) {
	tests := []struct {
		name        string
		given       string
		save        func(context.Context, map[string]any) (*salesforce.SaveResult, error)
		wantUpsert  string
		wantCreated bool
		wantStatus  sfblocks.Status
		wantCode    sfblocks.Code
		wantSFCode  string
	}{
		{name: "create", given: `{"object":"Contact","fields":{"LastName":"Byron"}}`,
			wantStatus: sfblocks.StatusOK, wantCreated: true},
		{name: "upsert created", given: `{"object":"Contact","fields":{"LastName":"Byron"},"external_id":{"field":"External_Id__c","value":"call-$(n)"},"variables":{"n":1}}`,
			save: func(context.Context, map[string]any) (*salesforce.SaveResult, error) {
				return &salesforce.SaveResult{ID: "003X", Success: true, Created: true}, nil
			},
			wantUpsert: "Contact/External_Id__c/call-1", wantStatus: sfblocks.StatusOK, wantCreated: true},
		{name: "upsert updated", given: `{"object":"Contact","fields":{"LastName":"Byron"},"external_id":{"field":"External_Id__c","value":"a/b c"}}`,
			save: func(context.Context, map[string]any) (*salesforce.SaveResult, error) {
				return &salesforce.SaveResult{ID: "003X", Success: true, Created: false}, nil
			},
			wantUpsert: "Contact/External_Id__c/a/b c", wantStatus: sfblocks.StatusOK, wantCreated: false},
		{name: "refused", given: `{"object":"Contact","fields":{"FirstName":"Ada"}}`,
			save: func(context.Context, map[string]any) (*salesforce.SaveResult, error) {
				return nil, &salesforce.APIError{StatusCode: 400, ErrorCode: "REQUIRED_FIELD_MISSING", Fields: []string{"LastName"},
					Body: []byte(`[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]`)}
			},
			wantStatus: sfblocks.StatusFailed, wantCode: sfblocks.CodeSalesforceError, wantSFCode: "REQUIRED_FIELD_MISSING"},
		{name: "success false", given: `{"object":"Contact","fields":{"LastName":"B"}}`,
			save: func(context.Context, map[string]any) (*salesforce.SaveResult, error) {
				return &salesforce.SaveResult{Success: false, Errors: []salesforce.RecordError{{StatusCode: "DUPLICATES_DETECTED"}}}, nil
			},
			wantStatus: sfblocks.StatusFailed, wantCode: sfblocks.CodeSalesforceError, wantSFCode: "DUPLICATES_DETECTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{save: tt.save}
			ex := newTestExecutor(t, api)
			r := ex.Handle(context.Background(), sfblocks.Insert, []byte(tt.given))
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s (%+v)", r.Status, tt.wantStatus, r.Error)
			}
			if tt.wantStatus == sfblocks.StatusFailed {
				if r.Error.Code != tt.wantCode || r.Error.SalesforceCode != tt.wantSFCode || r.ObjectID != "" || r.Created != nil || r.ResultBody == "" {
					t.Fatalf("failure reply = %+v %+v", r, r.Error)
				}
				return
			}
			if r.ObjectID == "" || r.Created == nil || *r.Created != tt.wantCreated || r.Count != nil {
				t.Fatalf("reply = %+v", r)
			}
			if tt.wantUpsert != "" && (len(api.upserts) != 1 || api.upserts[0] != tt.wantUpsert) {
				t.Errorf("upserts = %v, want %s", api.upserts, tt.wantUpsert)
			}
			if tt.wantUpsert == "" && len(api.upserts) != 0 {
				t.Errorf("create went through upsert: %v", api.upserts)
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	api := &fakeAPI{query: func(ctx context.Context, _ string) (*salesforce.QueryResult, error) {
		<-ctx.Done()
		// As the client reports it: a transport error around the cause.
		return nil, fmt.Errorf("salesforce: GET /query: %w", ctx.Err())
	}}
	ex := newTestExecutor(t, api)
	r := ex.Handle(context.Background(), sfblocks.Search, []byte(`{"id":"slow","timeout_ms":20,"query":"SELECT Id FROM Contact"}`))
	if r.Status != sfblocks.StatusFailed || r.Error.Code != sfblocks.CodeTimeout || !r.Error.Retryable || r.ID != "slow" {
		t.Fatalf("reply = %+v %+v", r, r.Error)
	}
}

func TestRunDeadlineWinsOverOtherErrors(t *testing.T) {
	// A call cut short by the deadline may surface as an error that lost the
	// cause; the job still answers TIMEOUT.
	api := &fakeAPI{query: func(ctx context.Context, _ string) (*salesforce.QueryResult, error) {
		<-ctx.Done()
		return nil, errors.New("salesforce: read response: connection reset")
	}}
	ex := newTestExecutor(t, api)
	r := ex.Handle(context.Background(), sfblocks.Search, []byte(`{"timeout_ms":10,"query":"SELECT Id FROM Contact"}`))
	if r.Error == nil || r.Error.Code != sfblocks.CodeTimeout {
		t.Fatalf("reply = %+v %+v", r, r.Error)
	}
}

func TestRunAccounts(t *testing.T) {
	main, eu := &fakeAPI{}, &fakeAPI{}
	ex, err := NewExecutor(StaticAccounts{Default: "main", Clients: map[string]SalesforceAPI{"main": main, "eu": eu}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, given, wantAccount string
		wantCode                 sfblocks.Code
	}{
		{name: "default", given: `{"query":"SELECT Id FROM Contact"}`, wantAccount: "main"},
		{name: "named", given: `{"account":"eu","query":"SELECT Id FROM Contact"}`, wantAccount: "eu"},
		{name: "unknown", given: `{"account":"mars","query":"SELECT Id FROM Contact"}`, wantCode: sfblocks.CodeUnknownAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ex.Handle(context.Background(), sfblocks.Search, []byte(tt.given))
			if tt.wantCode != "" {
				if r.Error == nil || r.Error.Code != tt.wantCode || r.Error.Retryable {
					t.Fatalf("reply = %+v %+v", r, r.Error)
				}
				return
			}
			if r.Account != tt.wantAccount || r.Status != sfblocks.StatusNoData {
				t.Fatalf("reply = %+v %+v", r, r.Error)
			}
		})
	}
	if len(main.queries) != 1 || len(eu.queries) != 1 {
		t.Errorf("calls: main %d, eu %d", len(main.queries), len(eu.queries))
	}
	if _, err := (StaticAccounts{Clients: map[string]SalesforceAPI{"a": main, "b": eu}}).Lookup(""); !errors.Is(err, sfblocks.ErrUnknownAccount) {
		t.Errorf("no default among several: err = %v", err)
	}
	if acct, err := (StaticAccounts{Clients: map[string]SalesforceAPI{"only": main}}).Lookup(""); err != nil || acct.Name != "only" {
		t.Errorf("single account: %q %v", acct.Name, err)
	}
}

type panicAPI struct{ fakeAPI }

func (p *panicAPI) Query(context.Context, string, ...salesforce.QueryOption) (*salesforce.QueryResult, error) {
	panic("boom")
}

func TestRunRecoversPanic(t *testing.T) {
	ex := newTestExecutor(t, &panicAPI{})
	r := ex.Handle(context.Background(), sfblocks.Search, []byte(`{"id":"p","query":"SELECT Id FROM Contact"}`))
	if r.Status != sfblocks.StatusFailed || r.Error.Code != sfblocks.CodeInternal || r.ID != "p" {
		t.Fatalf("reply = %+v %+v", r, r.Error)
	}
}

func TestRunDuration(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time {
		now = now.Add(1500 * time.Millisecond)
		return now
	}
	ex := newTestExecutor(t, nil, WithClock(clock))
	r := ex.Handle(context.Background(), sfblocks.Search, []byte(`{"query":"SELECT Id FROM Contact"}`))
	if r.DurationMS != 1500 || r.Attempt != 0 {
		t.Fatalf("duration %d attempt %d", r.DurationMS, r.Attempt)
	}
}

func TestRunKeepsSalesforceAnswerPastDeadline(t *testing.T) {
	api := &fakeAPI{query: func(ctx context.Context, _ string) (*salesforce.QueryResult, error) {
		<-ctx.Done()
		return nil, &salesforce.APIError{StatusCode: 400, ErrorCode: "MALFORMED_QUERY", Body: []byte(`[]`)}
	}}
	r := newTestExecutor(t, api).Handle(context.Background(), sfblocks.Search, []byte(`{"timeout_ms":10,"query":"SELECT Id FROM Contact"}`))
	if r.Error == nil || r.Error.Code != sfblocks.CodeSalesforceError || r.Error.SalesforceCode != "MALFORMED_QUERY" {
		t.Fatalf("reply = %+v %+v", r, r.Error)
	}
}
