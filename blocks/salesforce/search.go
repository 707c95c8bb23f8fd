package salesforce

import (
	"context"
	"net/http"
)

// SearchResult is the answer to a SOSL or parameterized search.
type SearchResult struct {
	SearchRecords []Record `json:"searchRecords"`
}

// Search runs a SOSL statement (FIND {...} IN ... RETURNING ...). Build the
// term with [EscapeSOSL].
func (c *Client) Search(ctx context.Context, sosl string) (*SearchResult, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/search", route: "/search", q: sosl})
	if err != nil {
		return nil, err
	}
	return decodeSearch(resp.body)
}

// decodeSearch decodes a search's answer, its records as plain values (see
// queryPage).
func decodeSearch(body []byte) (*SearchResult, error) {
	var page struct {
		SearchRecords []any `json:"searchRecords"`
	}
	if err := decodeJSON(body, &page); err != nil {
		return nil, err
	}
	out := &SearchResult{}
	if page.SearchRecords != nil {
		recs, err := appendRecords(make([]Record, 0, len(page.SearchRecords)), page.SearchRecords)
		if err != nil {
			return nil, err
		}
		out.SearchRecords = recs
	}
	return out, nil
}

// ParameterizedSearchRequest is the body of a parameterized search. Q is a
// plain search string: it needs no SOSL escaping.
type ParameterizedSearchRequest struct {
	Q string `json:"q"`
	// In is the field group to search: ALL, NAME, EMAIL, PHONE or SIDEBAR.
	// Defaults to ALL.
	In           string                 `json:"in,omitempty"`
	Fields       []string               `json:"fields,omitempty"`
	SObjects     []ParameterizedSObject `json:"sobjects,omitempty"`
	OverallLimit int                    `json:"overallLimit,omitempty"`
	DefaultLimit int                    `json:"defaultLimit,omitempty"`
}

// ParameterizedSObject limits a parameterized search to one object, with the
// fields to return, an optional SOQL WHERE condition and a limit.
type ParameterizedSObject struct {
	Name   string   `json:"name"`
	Fields []string `json:"fields,omitempty"`
	Where  string   `json:"where,omitempty"`
	Limit  int      `json:"limit,omitempty"`
}

// ParameterizedSearch runs a search with POST /parameterizedSearch.
func (c *Client) ParameterizedSearch(ctx context.Context, req ParameterizedSearchRequest) (*SearchResult, error) {
	for _, o := range req.SObjects {
		if err := checkName("object", o.Name); err != nil {
			return nil, err
		}
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/parameterizedSearch", route: "/parameterizedSearch", body: req})
	if err != nil {
		return nil, err
	}
	return decodeSearch(resp.body)
}
