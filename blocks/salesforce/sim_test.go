package salesforce_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// ccSource gets tokens from the simulator's client credentials flow and
// drops exactly the token the client reports as rejected, counting grants.
type ccSource struct {
	cfg    clientcredentials.Config
	mu     sync.Mutex
	tok    *oauth2.Token
	grants int
}

func (s *ccSource) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil {
		return s.tok, nil
	}
	tok, err := s.cfg.Token(ctx)
	if err != nil {
		return nil, err
	}
	s.grants++
	s.tok = tok
	return tok, nil
}

func (s *ccSource) Invalidate(failed *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken == failed.AccessToken {
		s.tok = nil
	}
}

func simClient(t *testing.T, opts sfsim.Options, copts ...salesforce.Option) (*salesforce.Client, *sfsim.Server, *ccSource) {
	t.Helper()
	srv := workertest.StartSim(t, opts)
	src := &ccSource{cfg: clientcredentials.Config{
		ClientID:     sfsim.DefaultClientID,
		ClientSecret: sfsim.DefaultClientSecret,
		TokenURL:     srv.MyDomainURL() + "/services/oauth2/token",
	}}
	c, err := salesforce.New(src, copts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv, src
}

func TestAgainstSimulatorQueryAndSearch(t *testing.T) {
	t.Parallel()
	c, srv, _ := simClient(t, sfsim.Options{})
	ctx := context.Background()

	res, err := c.Query(ctx, "SELECT Id, Name, Account.Name FROM Contact WHERE Phone = '"+
		salesforce.EscapeSOQLString("+1 415 555 0100")+"'")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if res.TotalSize != 1 || len(res.Records) != 1 || res.Records[0]["Name"] != "Ada Byron" {
		t.Fatalf("query by phone = %+v, want Ada Byron", res)
	}
	if !strings.HasPrefix(res.Records[0]["Id"].(string), "003") || len(res.Records[0]["Id"].(string)) != 18 {
		t.Errorf("Id %v is not an 18-character Contact id", res.Records[0]["Id"])
	}
	if res.Records[0].Type() != "Contact" {
		t.Errorf("attributes.type = %q", res.Records[0].Type())
	}

	// A hostile value stays a literal: it matches nothing instead of everything.
	res, err = c.Query(ctx, "SELECT Id FROM Contact WHERE LastName = '"+salesforce.EscapeSOQLString("' OR Name != '")+"'")
	if err != nil || res.TotalSize != 0 {
		t.Fatalf("hostile value: %v, %+v; want no records", err, res)
	}
	res, err = c.Query(ctx, "SELECT Id FROM Contact WHERE LastName = '"+salesforce.EscapeSOQLString("O'Brien")+"'")
	if err != nil || res.TotalSize == 0 {
		t.Fatalf("O'Brien: %v, %+v; want a match", err, res)
	}

	// Paging: batches of 200 followed to the end, and stopping at MaxRecords.
	all, err := c.Query(ctx, "SELECT Id FROM Contact", salesforce.BatchSize(200), salesforce.MaxRecords(100000))
	if err != nil {
		t.Fatal(err)
	}
	if all.TotalSize <= 200 || len(all.Records) != all.TotalSize || !all.Done || all.Pages < 2 {
		t.Fatalf("paged query: total %d, got %d records in %d pages, done=%v", all.TotalSize, len(all.Records), all.Pages, all.Done)
	}
	some, err := c.Query(ctx, "SELECT Id FROM Contact", salesforce.BatchSize(200), salesforce.MaxRecords(250))
	if err != nil || len(some.Records) != 250 || some.Done {
		t.Fatalf("MaxRecords(250): %v, %d records, done=%v", err, len(some.Records), some.Done)
	}

	count, err := c.Query(ctx, "SELECT COUNT() FROM Contact")
	if err != nil || count.TotalSize != all.TotalSize || len(count.Records) != 0 {
		t.Fatalf("COUNT(): %v %+v", err, count)
	}

	// queryAll sees a deleted record, query does not.
	id := some.Records[len(some.Records)-1]["Id"].(string) // not Ada, searched below
	if err := srv.DB().Delete("Contact", id); err != nil {
		t.Fatal(err)
	}
	q := "SELECT Id FROM Contact WHERE Id = '" + id + "'"
	if r, err := c.Query(ctx, q); err != nil || r.TotalSize != 0 {
		t.Errorf("query of a deleted record: %v %+v", err, r)
	}
	if r, err := c.QueryAll(ctx, q); err != nil || r.TotalSize != 1 {
		t.Errorf("queryAll of a deleted record: %v %+v", err, r)
	}

	sr, err := c.Search(ctx, "FIND {"+salesforce.EscapeSOSL("ada@example.com")+"} IN EMAIL FIELDS RETURNING Contact(Id, Name)")
	if err != nil || len(sr.SearchRecords) != 1 || sr.SearchRecords[0]["Name"] != "Ada Byron" {
		t.Fatalf("SOSL search: %v %+v", err, sr)
	}
	pr, err := c.ParameterizedSearch(ctx, salesforce.ParameterizedSearchRequest{
		Q: "Acme", In: "NAME", SObjects: []salesforce.ParameterizedSObject{{Name: "Account", Fields: []string{"Id", "Name"}, Limit: 5}},
	})
	if err != nil || len(pr.SearchRecords) == 0 || pr.SearchRecords[0].Type() != "Account" {
		t.Fatalf("parameterized search: %v %+v", err, pr)
	}
}

func TestAgainstSimulatorWrites(t *testing.T) {
	t.Parallel()
	c, srv, _ := simClient(t, sfsim.Options{})
	ctx := context.Background()

	before := srv.DB().Count("Case")
	res, err := c.Create(ctx, "Case", map[string]any{"Subject": "Caller asked for a callback", "Origin": "Phone"})
	if err != nil || !res.Success || !strings.HasPrefix(res.ID, "500") || !res.Created {
		t.Fatalf("create: %v %+v", err, res)
	}
	if srv.DB().Count("Case") != before+1 {
		t.Errorf("Case count %d, want %d", srv.DB().Count("Case"), before+1)
	}

	up1, err := c.Upsert(ctx, "Task", "External_Id__c", "call-0001", map[string]any{"Subject": "Call", "Status": "Completed"})
	if err != nil || !up1.Created {
		t.Fatalf("first upsert: %v %+v", err, up1)
	}
	up2, err := c.Upsert(ctx, "Task", "External_Id__c", "call-0001", map[string]any{"Subject": "Call (again)", "Status": "Completed"})
	if err != nil || up2.Created || up2.ID != up1.ID {
		t.Fatalf("second upsert: %v %+v, want an update of %s", err, up2, up1.ID)
	}

	results, err := c.CreateCollection(ctx, []salesforce.Record{
		{"attributes": map[string]any{"type": "Contact"}, "LastName": "One"},
		{"attributes": map[string]any{"type": "Contact"}, "FirstName": "NoLastName"},
	}, false)
	if err != nil || len(results) != 2 || !results[0].Success || results[1].Success {
		t.Fatalf("collection: %v %+v", err, results)
	}
	if e := results[1].Errors; len(e) == 0 || e[0].StatusCode != salesforce.CodeRequiredFieldMissing {
		t.Errorf("second record's errors = %+v, want REQUIRED_FIELD_MISSING", e)
	}

	lim, err := c.Limits(ctx)
	if err != nil || lim["DailyApiRequests"].Max != sfsim.DefaultDailyAPILimit {
		t.Fatalf("limits: %v %+v", err, lim["DailyApiRequests"])
	}
	if u, ok := c.Usage(); !ok || u.Max != sfsim.DefaultDailyAPILimit || u.Used == 0 {
		t.Errorf("usage from Sforce-Limit-Info = %+v, %v", u, ok)
	}
	d, err := c.Describe(ctx, "Contact")
	if err != nil || d.KeyPrefix != "003" || len(d.Fields) == 0 {
		t.Fatalf("describe: %v %+v", err, d)
	}
}

func TestAgainstSimulatorErrors(t *testing.T) {
	t.Parallel()
	c, srv, _ := simClient(t, sfsim.Options{})
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func() error
		wantCode string
		wantKind salesforce.Kind
	}{
		{"malformed query", func() error { _, err := c.Query(ctx, "SELEC Id FROM Contact"); return err }, salesforce.CodeMalformedQuery, salesforce.KindPermanent},
		{"unknown field", func() error { _, err := c.Query(ctx, "SELECT Nope FROM Contact"); return err }, salesforce.CodeInvalidField, salesforce.KindPermanent},
		{"unknown object", func() error { _, err := c.Query(ctx, "SELECT Id FROM Nope"); return err }, salesforce.CodeInvalidType, salesforce.KindPermanent},
		{"required field", func() error { _, err := c.Create(ctx, "Contact", map[string]any{"FirstName": "X"}); return err }, salesforce.CodeRequiredFieldMissing, salesforce.KindPermanent},
		{"unknown sobject", func() error { _, err := c.Create(ctx, "Nope", map[string]any{"Name": "X"}); return err }, salesforce.CodeNotFound, salesforce.KindPermanent},
		{"id on create", func() error {
			_, err := c.Create(ctx, "Contact", map[string]any{"Id": "003000000000000AAA", "LastName": "X"})
			return err
		}, salesforce.CodeInvalidField, salesforce.KindPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var apiErr *salesforce.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != tt.wantCode {
				t.Fatalf("err = %v, want %s", err, tt.wantCode)
			}
			if k := salesforce.Classify(err); k != tt.wantKind {
				t.Errorf("Classify = %v, want %v", k, tt.wantKind)
			}
		})
	}

	t.Run("duplicate external id", func(t *testing.T) {
		if _, err := c.Create(ctx, "Contact", map[string]any{"LastName": "A", "External_Id__c": "dup-1"}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Create(ctx, "Contact", map[string]any{"LastName": "B", "External_Id__c": "dup-1"})
		if !errors.Is(err, &salesforce.APIError{ErrorCode: salesforce.CodeDuplicateValue}) {
			t.Fatalf("err = %v, want DUPLICATE_VALUE", err)
		}
	})

	t.Run("lock row is transient", func(t *testing.T) {
		srv.Faults().LockNextWrites(1)
		_, err := c.Create(ctx, "Case", map[string]any{"Subject": "x"})
		if !errors.Is(err, &salesforce.APIError{ErrorCode: salesforce.CodeUnableToLockRow}) || salesforce.Classify(err) != salesforce.KindTransient {
			t.Fatalf("err = %v (kind %v), want transient UNABLE_TO_LOCK_ROW", err, salesforce.Classify(err))
		}
		if _, err := c.Create(ctx, "Case", map[string]any{"Subject": "x"}); err != nil {
			t.Fatalf("write after the lock: %v", err)
		}
	})

	for _, mode := range []string{"unavailable", "refuse"} {
		t.Run("outage "+mode+" is transient", func(t *testing.T) {
			if err := srv.Faults().StartOutage(mode, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
			defer srv.Faults().EndOutage()
			_, err := c.Query(ctx, "SELECT Id FROM Account LIMIT 1")
			if salesforce.Classify(err) != salesforce.KindTransient {
				t.Fatalf("err = %v (kind %v), want transient", err, salesforce.Classify(err))
			}
		})
	}

	t.Run("daily limit is rate limiting", func(t *testing.T) {
		_, max := srv.APIUsage()
		srv.SetAPIUsage(max)
		defer srv.SetAPIUsage(0)
		_, err := c.Limits(ctx)
		if salesforce.Classify(err) != salesforce.KindRateLimited {
			t.Fatalf("err = %v (kind %v), want rate_limited", err, salesforce.Classify(err))
		}
	})
}

func TestAgainstSimulatorExpiredSessionRefreshesOnce(t *testing.T) {
	t.Parallel()
	c, srv, src := simClient(t, sfsim.Options{})
	ctx := context.Background()
	if _, err := c.Limits(ctx); err != nil {
		t.Fatal(err)
	}
	srv.ExpireAllSessions()
	if _, err := c.Limits(ctx); err != nil {
		t.Fatalf("call after expiry: %v", err)
	}
	if src.grants != 2 {
		t.Errorf("token grants = %d, want 2 (initial + one after expiry)", src.grants)
	}
	if got := srv.Stats().TokenGrants["client_credentials"]; got != 2 {
		t.Errorf("simulator counted %d client_credentials grants, want 2", got)
	}
}

func ExampleClient_Query() {
	srv, err := sfsim.Start("127.0.0.1:0", sfsim.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	tok := srv.IssueToken("api")
	c, err := salesforce.New(salesforce.StaticToken(tok.AccessToken, tok.InstanceURL))
	if err != nil {
		panic(err)
	}
	phone := "+1 415 555 0100"
	res, err := c.Query(context.Background(),
		"SELECT Name FROM Contact WHERE Phone = '"+salesforce.EscapeSOQLString(phone)+"'")
	if err != nil {
		panic(err)
	}
	fmt.Println(res.TotalSize, res.Records[0].Fields()["Name"])
	// Output: 1 Ada Byron
}
