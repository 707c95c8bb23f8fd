package worker

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sfblocks/sfblocks"
)

// Every job's reply is encoded once, on its job's goroutine, and
// encoding/json spends most of that on reflection: an allocation for each
// key and value of each record's map, and a sort of its keys. So a reply
// made of what a job's reply holds (strings, json.Number, booleans, nil,
// and maps and slices of them, as Salesforce's answer decodes) is written
// here, by hand, byte for byte as json.Marshal writes it: the same member
// order and omissions, map keys sorted, strings escaped alike (what is not
// plain text is escaped by encoding/json itself). Anything else, such as a
// float64 a Handler of another make put in a record, is left to
// json.Marshal. TestReplyEncodingMatchesJSON and FuzzReplyEncoding hold the
// two to the same bytes, and the wire golden files to the first release's.

// appendReply appends the JSON of r to b as json.Marshal(r) would write
// it; false when r holds a value it leaves to json.Marshal (b is then to
// be discarded).
func appendReply(b []byte, r *sfblocks.Reply) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	if r.Account != "" {
		b = append(b, `,"account":`...)
		b = appendString(b, r.Account)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, string(r.Status))
	if r.Count != nil {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(*r.Count), 10)
	}
	if r.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	var first []byte // the JSON of Records[0], which First usually is
	if len(r.Records) > 0 {
		b = append(b, `,"records":[`...)
		for i, rec := range r.Records {
			if i > 0 {
				b = append(b, ',')
			}
			start := len(b)
			var ok bool
			if b, ok = appendMap(b, rec); !ok {
				return b, false
			}
			if i == 0 {
				first = b[start:]
			}
		}
		b = append(b, ']')
	}
	if len(r.First) > 0 {
		b = append(b, `,"first":`...)
		if first != nil && sameMap(r.First, r.Records[0]) {
			b = append(b, first...)
		} else {
			var ok bool
			if b, ok = appendMap(b, r.First); !ok {
				return b, false
			}
		}
	}
	if r.ObjectID != "" {
		b = append(b, `,"object_id":`...)
		b = appendString(b, r.ObjectID)
	}
	if r.Created != nil {
		b = append(b, `,"created":`...)
		b = strconv.AppendBool(b, *r.Created)
	}
	if r.ResultCode != 0 {
		b = append(b, `,"result_code":`...)
		b = strconv.AppendInt(b, int64(r.ResultCode), 10)
	}
	if r.ResultBody != "" {
		b = append(b, `,"result_body":`...)
		b = appendString(b, r.ResultBody)
	}
	if e := r.Error; e != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendString(b, string(e.Code))
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		if e.SalesforceCode != "" {
			b = append(b, `,"salesforce_code":`...)
			b = appendString(b, e.SalesforceCode)
		}
		b = append(b, `,"retryable":`...)
		b = strconv.AppendBool(b, e.Retryable)
		b = append(b, '}')
	}
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, r.DurationMS, 10)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(r.Attempt), 10)
	return append(b, '}'), true
}

// sameMap reports whether a and b are one map (not merely equal ones).
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// appendMap appends m as json.Marshal writes a map[string]any: null when
// nil, else its members in the order of their sorted keys.
func appendMap(b []byte, m map[string]any) ([]byte, bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = appendValue(b, m[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendValue appends one value of a record: what decoding Salesforce's
// JSON gives (with UseNumber), and nothing else.
func appendValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendString(b, v), true
	case json.Number:
		s := string(v)
		if s == "" {
			s = "0" // as encoding/json writes the zero Number
		}
		if !validNumber(s) {
			return b, false // json.Marshal refuses it, with its error
		}
		return append(b, s...), true
	case bool:
		return strconv.AppendBool(b, v), true
	case map[string]any:
		return appendMap(b, v)
	case []any:
		if v == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false
}

// appendString appends s as a JSON string. Plain text (printable ASCII
// other than the characters encoding/json escapes, and valid UTF-8 other
// than U+2028 and U+2029) is copied as it is; anything else is escaped by
// encoding/json itself, so that the bytes are its bytes.
func appendString(b []byte, s string) []byte {
	wide := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			wide = true
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return appendEscaped(b, s)
		}
	}
	if wide && (!utf8.ValidString(s) || strings.Contains(s, "\u2028") || strings.Contains(s, "\u2029")) {
		return appendEscaped(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendEscaped(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// validNumber reports whether s is a JSON number literal (RFC 8259), as
// encoding/json checks a json.Number before writing it.
func validNumber(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	digits := func() {
		for s != "" && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	switch {
	case s == "":
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		digits()
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		digits()
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		digits()
	}
	return s == ""
}
