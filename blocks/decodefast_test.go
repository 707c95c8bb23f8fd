package blocks

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/sfblocks/sfblocks"
)

// jsonDecodeSearch is what decodeJob's encoding/json path decodes.
func jsonDecodeSearch(data []byte) (sfblocks.SearchRequest, error) {
	var r sfblocks.SearchRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return r, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, io.ErrUnexpectedEOF
	}
	return r, nil
}

func TestDecodeSearchFast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		given  string
		wantOK bool // the fast path decodes it (else encoding/json does)
	}{
		{"templated", string(benchSearchJob), true},
		{"bench load", `{"query":"SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)' LIMIT $(n)","variables":{"ANI":"+1 415 555 0100","n":17}}`, true},
		{"structured without where", `{"object":"Contact","fields":["Id","Name"],"limit":5,"language":"soql"}`, true},
		{"empty", ` { } `, true},
		{"empty variables and fields", `{"variables":{},"fields":[]}`, true},
		{"numbers kept as text", `{"variables":{"a":-0.5e+3,"b":0,"c":true,"d":false}}`, true},
		{"where", string(benchStructuredJob), false},
		{"escape", `{"query":"SELECT Id FROM Contact WHERE Name = '\u00e9'"}`, false},
		{"other spelling", `{"Query":"SELECT Id FROM Contact"}`, false},
		{"duplicate key", `{"query":"a","query":"b"}`, false},
		{"duplicate variable", `{"variables":{"a":1,"a":2}}`, false},
		{"null", `{"id":null}`, false},
		{"float where an int goes", `{"max_records":1.5}`, false},
		{"huge int", `{"timeout_ms":12345678901234567890}`, false},
		{"leading zero", `{"limit":01}`, false},
		{"trailing data", `{"query":"a"} {}`, false},
		{"unknown key", `{"nope":1}`, false},
		{"nested variable", `{"variables":{"a":{"b":1}}}`, false},
		{"trailing comma", `{"query":"a",}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got sfblocks.SearchRequest
			ok := decodeSearchFast([]byte(tt.given), &got)
			if ok != tt.wantOK {
				t.Fatalf("fast path ok %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			want, err := jsonDecodeSearch([]byte(tt.given))
			if err != nil {
				t.Fatalf("encoding/json refuses what the fast path took: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fast path decoded\n%#v\nencoding/json\n%#v", got, want)
			}
		})
	}
}

// TestDecodeFallsBack: a job the fast path gives up on half-way is decoded
// by encoding/json, whole.
func TestDecodeFallsBack(t *testing.T) {
	t.Parallel()
	var r sfblocks.SearchRequest
	// The fast path reads id and query, then gives up at where.
	err := decodeJob(sfblocks.Search, []byte(`{"id":"x","query":"SELECT Id FROM Contact","where":[]}`), DefaultMaxJobBytes, &r, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "x" || r.Query != "SELECT Id FROM Contact" || r.Where == nil {
		t.Errorf("decoded %#v", r)
	}
}

// FuzzDecodeSearchFast: whatever the fast path decodes, encoding/json (as
// decodeJob runs it) decodes too, to the very same request.
func FuzzDecodeSearchFast(f *testing.F) {
	for _, seed := range []string{string(benchSearchJob), string(benchStructuredJob), `{}`, `{"variables":{"a":1e5,"b":"x","c":true}}`,
		`{"fields":["a","b"],"limit":3,"max_records":-7,"timeout_ms":0}`, `{"id":"a","id":"b"}`, `{"query":"\""}`, ` {"object":"Case"}` + "\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // decodeJob refuses it first
		}
		var got sfblocks.SearchRequest
		if !decodeSearchFast(data, &got) {
			return
		}
		want, err := jsonDecodeSearch(data)
		if err != nil {
			t.Fatalf("fast path decoded %q, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast path decoded\n%#v\nencoding/json\n%#v", data, got, want)
		}
	})
}
