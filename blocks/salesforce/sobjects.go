package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// SaveResult is Salesforce's answer to a create or upsert of one record.
type SaveResult struct {
	ID      string        `json:"id"`
	Success bool          `json:"success"`
	Errors  []RecordError `json:"errors"`
	// Created is set by upserts: true when a record was inserted, false when
	// an existing one was updated. Create sets it to true.
	Created bool `json:"created"`
}

// RecordError is one error of a record in a create or collection answer.
// Salesforce names the code statusCode here, not errorCode.
type RecordError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

// Create inserts one record of object with POST /sobjects/{object}/.
// Salesforce refuses an Id among the fields.
func (c *Client) Create(ctx context.Context, object string, fields map[string]any) (*SaveResult, error) {
	if err := checkName("object", object); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/sobjects/" + object + "/", route: "/sobjects/{object}", object: object, body: fields})
	if err != nil {
		return nil, err
	}
	var out SaveResult
	if err := decodeJSON(resp.body, &out); err != nil {
		return nil, err
	}
	out.Created = true
	return &out, nil
}

// Upsert creates or updates the record of object whose external ID field
// equals value, with PATCH /sobjects/{object}/{field}/{value}, so that sending
// it twice never makes two records. Created tells which happened. When the
// value matches several records Salesforce answers 300 and Upsert returns an
// *APIError with code [CodeMultipleChoices] and the records' URLs in Matches.
func (c *Client) Upsert(ctx context.Context, object, field, value string, fields map[string]any) (*SaveResult, error) {
	if err := checkName("object", object); err != nil {
		return nil, err
	}
	if err := checkName("external ID field", field); err != nil {
		return nil, err
	}
	if value == "" {
		return nil, fmt.Errorf("salesforce: upsert of %s needs a non-empty %s value", object, field)
	}
	path := "/sobjects/" + object + "/" + field + "/" + pathSegment(value)
	resp, err := c.do(ctx, request{method: http.MethodPatch, path: path, body: fields,
		route: "/sobjects/{object}/{field}/{value}", object: object,
		label: "PATCH /sobjects/" + object + "/" + field + "/{value}"})
	if err != nil {
		return nil, err
	}
	switch resp.status {
	case http.StatusMultipleChoices:
		e := &APIError{StatusCode: resp.status, ErrorCode: CodeMultipleChoices,
			Message: fmt.Sprintf("%s matches several %s records; make the field unique", field, object),
			Body:    truncate(resp.body, maxErrorBody)}
		_ = json.Unmarshal(resp.body, &e.Matches)
		return nil, e
	case http.StatusNoContent:
		// API versions before 46.0 answer an update with no body.
		return &SaveResult{Success: true, Created: false}, nil
	}
	var out SaveResult
	if err := decodeJSON(resp.body, &out); err != nil {
		return nil, err
	}
	out.Created = resp.status == http.StatusCreated
	return &out, nil
}

// MaxCollectionRecords is the most records one sObject Collections request
// takes.
const MaxCollectionRecords = 200

// CreateCollection inserts up to 200 records, of one or several types, in
// one request (POST /composite/sobjects). Each record names its type in
// attributes: Record{"attributes": map[string]any{"type": "Case"}, ...}.
// With allOrNone, one failure rolls back every record. The results are in
// the order of records; a record's failure is in its result, not in err.
func (c *Client) CreateCollection(ctx context.Context, records []Record, allOrNone bool) ([]SaveResult, error) {
	if len(records) == 0 {
		return nil, nil
	}
	if len(records) > MaxCollectionRecords {
		return nil, fmt.Errorf("salesforce: %d records in one collection; split them into requests of at most %d", len(records), MaxCollectionRecords)
	}
	for i, r := range records {
		if err := checkName(fmt.Sprintf("record %d type", i), r.Type()); err != nil {
			return nil, err
		}
	}
	body := map[string]any{"allOrNone": allOrNone, "records": records}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/composite/sobjects", route: "/composite/sobjects", body: body})
	if err != nil {
		return nil, err
	}
	var out []SaveResult
	if err := decodeJSON(resp.body, &out); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Created = out[i].Success
	}
	return out, nil
}

// UpsertCollection upserts up to 200 records of object on the external ID
// field in one request (PATCH /composite/sobjects/{object}/{field}, API
// 46.0 and later): each record holds its own value of field, and is
// updated when a record of object has that value, created otherwise. With
// allOrNone, one failure rolls back every record. The results are in the
// order of records, Created telling inserts from updates; a record's
// failure is in its result, not in err.
func (c *Client) UpsertCollection(ctx context.Context, object, field string, records []Record, allOrNone bool) ([]SaveResult, error) {
	if len(records) == 0 {
		return nil, nil
	}
	if len(records) > MaxCollectionRecords {
		return nil, fmt.Errorf("salesforce: %d records in one collection; split them into requests of at most %d", len(records), MaxCollectionRecords)
	}
	if err := checkName("object", object); err != nil {
		return nil, err
	}
	if err := checkName("external ID field", field); err != nil {
		return nil, err
	}
	body := map[string]any{"allOrNone": allOrNone, "records": records}
	resp, err := c.do(ctx, request{method: http.MethodPatch, path: "/composite/sobjects/" + object + "/" + field,
		route: "/composite/sobjects/{object}/{field}", object: object, body: body})
	if err != nil {
		return nil, err
	}
	var out []SaveResult
	if err := decodeJSON(resp.body, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeResult is the part of an sObject describe that sfblocks uses.
type DescribeResult struct {
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	KeyPrefix  string          `json:"keyPrefix"`
	Createable bool            `json:"createable"`
	Queryable  bool            `json:"queryable"`
	Searchable bool            `json:"searchable"`
	Fields     []DescribeField `json:"fields"`
}

// DescribeField describes one field of an sObject.
type DescribeField struct {
	Name       string `json:"name"`
	Label      string `json:"label"`
	Type       string `json:"type"`
	Length     int    `json:"length"`
	Nillable   bool   `json:"nillable"`
	Createable bool   `json:"createable"`
	Updateable bool   `json:"updateable"`
	Unique     bool   `json:"unique"`
	ExternalID bool   `json:"externalId"`
	IDLookup   bool   `json:"idLookup"`
	// Filterable: the field may stand in a WHERE clause (long text areas
	// and some system fields may not).
	Filterable  bool     `json:"filterable"`
	ReferenceTo []string `json:"referenceTo"`
}

// Describe returns the metadata of object (GET /sobjects/{object}/describe).
func (c *Client) Describe(ctx context.Context, object string) (*DescribeResult, error) {
	if err := checkName("object", object); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/sobjects/" + object + "/describe", route: "/sobjects/{object}/describe", object: object})
	if err != nil {
		return nil, err
	}
	var out DescribeResult
	if err := decodeJSON(resp.body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Limit is one of the org's limits: its maximum and what remains today.
type Limit struct {
	Max       int `json:"Max"`
	Remaining int `json:"Remaining"`
}

// Limits maps a limit's name (DailyApiRequests, ...) to its values.
type Limits map[string]Limit

// Limits returns the org's limits (GET /limits); DailyApiRequests is the one
// that API usage counts against.
func (c *Client) Limits(ctx context.Context) (Limits, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/limits", route: "/limits"})
	if err != nil {
		return nil, err
	}
	var out Limits
	if err := decodeJSON(resp.body, &out); err != nil {
		return nil, err
	}
	return out, nil
}
