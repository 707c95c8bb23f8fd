package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Record is one sObject as Salesforce returns it, "attributes" included.
// Numbers are json.Number, so that IDs-as-numbers and large values survive.
type Record map[string]any

// Type returns the record's sObject type from its attributes, or "".
func (r Record) Type() string {
	if a, ok := r["attributes"].(map[string]any); ok {
		t, _ := a["type"].(string)
		return t
	}
	return ""
}

// Fields returns the record without Salesforce's "attributes" member, also
// inside nested relationship records. The record itself is not changed.
func (r Record) Fields() map[string]any {
	out := make(map[string]any, len(r))
	for k, v := range r {
		if k == "attributes" {
			continue
		}
		out[k] = stripAttributes(v)
	}
	return out
}

func stripAttributes(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return Record(t).Fields()
	case Record:
		return t.Fields()
	}
	return v
}

// QueryResult is the answer to a SOQL query, with every page that was
// fetched merged into Records.
type QueryResult struct {
	// TotalSize is the number of records the query matches, as Salesforce
	// counted them; for SELECT COUNT() it is the count.
	TotalSize int `json:"totalSize"`
	// Done is false when more records exist than were fetched.
	Done bool `json:"done"`
	// NextRecordsURL locates the next page when Done is false.
	NextRecordsURL string   `json:"nextRecordsUrl,omitempty"`
	Records        []Record `json:"records"`
	// Pages is the number of requests the query took.
	Pages int `json:"-"`
}

// queryPage is one page of a query's answer as it is decoded: records as
// plain values, which encoding/json builds without reflection (a Record,
// a named map type, costs an allocation per field to decode).
type queryPage struct {
	TotalSize      int    `json:"totalSize"`
	Done           bool   `json:"done"`
	NextRecordsURL string `json:"nextRecordsUrl,omitempty"`
	Records        []any  `json:"records"`
}

// appendRecords appends records decoded as plain values to out; a record
// that is not a JSON object fails, as decoding it into a Record would.
func appendRecords(out []Record, records []any) ([]Record, error) {
	for i, v := range records {
		switch r := v.(type) {
		case map[string]any:
			out = append(out, Record(r))
		case nil:
			out = append(out, nil)
		default:
			return nil, fmt.Errorf("salesforce: decode response: record %d is %T, not an object", i, v)
		}
	}
	return out, nil
}

type queryConfig struct {
	maxRecords int
	batchSize  int
}

// QueryOption configures [Client.Query] and [Client.QueryAll].
type QueryOption func(*queryConfig)

// MaxRecords stops following nextRecordsUrl once n records are fetched and
// trims the result to n. Defaults to 2000; n <= 0 keeps the default.
func MaxRecords(n int) QueryOption {
	return func(c *queryConfig) {
		if n > 0 {
			c.maxRecords = n
		}
	}
}

// BatchSize asks Salesforce for pages of n records (Sforce-Query-Options:
// batchSize=n; Salesforce takes 200 to 2000 and treats it as a hint).
// Defaults to Salesforce's own default, 2000.
func BatchSize(n int) QueryOption {
	return func(c *queryConfig) { c.batchSize = n }
}

// Query runs a SOQL query and follows nextRecordsUrl until every record, or
// the [MaxRecords] limit, is fetched.
func (c *Client) Query(ctx context.Context, soql string, opts ...QueryOption) (*QueryResult, error) {
	return c.query(ctx, "/query", soql, opts)
}

// QueryAll is [Client.Query] through the queryAll resource, which also
// returns deleted and archived records.
func (c *Client) QueryAll(ctx context.Context, soql string, opts ...QueryOption) (*QueryResult, error) {
	return c.query(ctx, "/queryAll", soql, opts)
}

func (c *Client) query(ctx context.Context, resource, soql string, opts []QueryOption) (*QueryResult, error) {
	cfg := queryConfig{maxRecords: 2000}
	for _, o := range opts {
		o(&cfg)
	}
	r := request{method: http.MethodGet, path: resource, route: resource, q: soql, batchSize: cfg.batchSize}
	var out QueryResult
	for {
		resp, err := c.do(ctx, r)
		if err != nil {
			return nil, err
		}
		var page queryPage
		if !decodeQueryPageFast(resp.body, &page) {
			page = queryPage{} // what the fast path read, forgotten
			if err := decodeJSON(resp.body, &page); err != nil {
				return nil, err
			}
		}
		out.Pages++
		if out.Pages == 1 {
			out.TotalSize = page.TotalSize
			out.Records = make([]Record, 0, min(page.TotalSize, cfg.maxRecords))
		}
		if out.Records, err = appendRecords(out.Records, page.Records); err != nil {
			return nil, err
		}
		out.Done, out.NextRecordsURL = page.Done, page.NextRecordsURL
		if len(out.Records) >= cfg.maxRecords {
			if len(out.Records) > cfg.maxRecords {
				out.Records = out.Records[:cfg.maxRecords]
				out.Done = false
			}
			return &out, nil
		}
		if page.Done || page.NextRecordsURL == "" {
			return &out, nil
		}
		// nextRecordsUrl is a path on the instance; refuse anything else so
		// a bad response cannot send the token elsewhere.
		if !strings.HasPrefix(page.NextRecordsURL, "/services/data/") {
			return nil, fmt.Errorf("salesforce: unexpected nextRecordsUrl %q", page.NextRecordsURL)
		}
		r = request{method: http.MethodGet, path: page.NextRecordsURL, route: resource + "/{locator}", batchSize: cfg.batchSize}
	}
}
