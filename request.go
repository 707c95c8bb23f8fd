package sfblocks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// SearchRequest is the JSON body of a search job. Give either Query (a SOQL
// or SOSL statement with $(name) placeholders) or Object (the structured
// form, from which the SOQL is built); not both. A zero number means "not
// given" and takes the default.
type SearchRequest struct {
	// ID identifies the job in its reply and in logs; generated when empty.
	// At most 128 printable characters.
	ID string `json:"id,omitempty"`
	// Account is the integration account to use; empty means the default.
	Account string `json:"account,omitempty"`
	// TimeoutMS bounds the job's Salesforce calls, in milliseconds.
	// Defaults to the executor's default timeout (30 s); at most its maximum
	// timeout (5 min).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Language is "soql" (the default) or "sosl".
	Language string `json:"language,omitempty"`
	// Query is the statement, with variables written $(name).
	Query string `json:"query,omitempty"`
	// Variables maps variable names to their values: strings, numbers or
	// booleans.
	Variables map[string]any `json:"variables,omitempty"`
	// MaxRecords is the most records returned. Defaults to 200; at most
	// 2000. Further pages (nextRecordsUrl) are fetched up to it.
	MaxRecords int `json:"max_records,omitempty"`
	// Object is the sObject searched by the structured form.
	Object string `json:"object,omitempty"`
	// Fields are the fields selected by the structured form; relationship
	// paths such as Account.Name are allowed.
	Fields []string `json:"fields,omitempty"`
	// Where are the structured form's conditions, all of which must hold.
	Where []Condition `json:"where,omitempty"`
	// OrderBy sorts the structured form's records.
	OrderBy OrderBy `json:"order_by,omitempty"`
	// Limit is the structured form's LIMIT, 1 to 2000; 0 means none.
	Limit int `json:"limit,omitempty"`
}

// Condition is one condition of a structured search.
//
// Op is one of = != < > <= >= LIKE IN, "empty" (field = null) or
// "not_empty" (field != null); LIKE and IN are case-insensitive. Value is a
// string, number or boolean (an array of them for IN; absent for empty and
// not_empty). Strings are quoted and escaped, so any text is safe. A string
// may hold $(name) placeholders, replaced by the variables' text. In a LIKE
// value the caller's own % and _ are wildcards (write \% and \_ to match
// them literally, \\ for a backslash), while a variable's text always
// matches literally: "$(prefix)%" finds names starting with the prefix even
// when it holds % or _. Type "date" or "datetime" renders the string
// unquoted, as SOQL wants for date fields, after checking its form
// (YYYY-MM-DD, YYYY-MM-DDThh:mm:ssZ).
type Condition struct {
	Field string `json:"field"`
	Op    string `json:"op"`
	Value any    `json:"value,omitempty"`
	Type  string `json:"type,omitempty"`
}

// Order is one ORDER BY item: Direction "asc" (the default) or "desc",
// Nulls "first" or "last" (Salesforce's default: first when ascending).
type Order struct {
	Field     string `json:"field"`
	Direction string `json:"direction,omitempty"`
	Nulls     string `json:"nulls,omitempty"`
}

// OrderBy is a structured search's sort order. In JSON it is an array of
// [Order] objects (or of strings), or one string in SOQL's own form:
// "LastName DESC NULLS LAST, FirstName".
type OrderBy []Order

// UnmarshalJSON accepts a string or an array of objects or strings.
func (o *OrderBy) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return invalid("order_by must be a string or an array")
		}
		return o.parse(s, "order_by")
	}
	if len(data) > 0 && data[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return invalid("order_by must be a string or an array")
		}
		*o = make(OrderBy, 0, len(items))
		for i, it := range items {
			where := "order_by[" + strconv.Itoa(i) + "]"
			if len(it) > 0 && it[0] == '"' {
				var s string
				if err := json.Unmarshal(it, &s); err != nil {
					return invalid("%s must be a string or an object", where)
				}
				if err := o.parse(s, where); err != nil {
					return err
				}
				continue
			}
			var keys map[string]json.RawMessage
			var item Order
			if json.Unmarshal(it, &keys) != nil || json.Unmarshal(it, &item) != nil {
				return invalid("%s must be an object {\"field\",\"direction\",\"nulls\"} or a string such as \"Name DESC\"", where)
			}
			for k := range keys {
				if k != "field" && k != "direction" && k != "nulls" {
					return invalid("unknown key %q in %s (an order item takes field, direction, nulls)", k, where)
				}
			}
			*o = append(*o, item)
		}
		return nil
	}
	if string(data) == "null" {
		*o = nil
		return nil
	}
	return invalid("order_by must be a string such as \"Name DESC\" or an array of {\"field\",\"direction\"}")
}

// parse appends the items of s, written "Field [ASC|DESC] [NULLS FIRST|LAST], ...".
func (o *OrderBy) parse(s, where string) error {
	for part := range strings.SplitSeq(s, ",") {
		words := strings.Fields(part)
		if len(words) == 0 {
			return invalid("%s has an empty item; write \"Field [ASC|DESC] [NULLS FIRST|LAST]\" items separated by commas", where)
		}
		item := Order{Field: words[0]}
		rest := words[1:]
		if len(rest) > 0 && (strings.EqualFold(rest[0], "asc") || strings.EqualFold(rest[0], "desc")) {
			item.Direction, rest = strings.ToLower(rest[0]), rest[1:]
		}
		if len(rest) == 2 && strings.EqualFold(rest[0], "nulls") {
			item.Nulls, rest = strings.ToLower(rest[1]), nil
		}
		if len(rest) > 0 {
			return invalid("%s: cannot read %q; write \"Field [ASC|DESC] [NULLS FIRST|LAST]\"", where, strings.Join(words, " "))
		}
		*o = append(*o, item)
	}
	return nil
}

// ExternalID makes an Insert an upsert: the record of the object whose
// external ID Field equals Value is updated, or created when there is none,
// so a repeated job never creates a second record. Value may hold $(name)
// placeholders.
type ExternalID struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

// InsertRequest is the JSON body of an insert job.
type InsertRequest struct {
	// ID identifies the job in its reply and in logs; generated when empty.
	ID string `json:"id,omitempty"`
	// Account is the integration account to use; empty means the default.
	Account string `json:"account,omitempty"`
	// TimeoutMS bounds the job's Salesforce calls, in milliseconds; see
	// [SearchRequest.TimeoutMS].
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Object is the sObject to create, such as Contact or Case.
	Object string `json:"object"`
	// Fields maps field API names to values: strings, numbers, booleans or
	// null. Strings may hold $(name) placeholders, replaced by the
	// variables' text (no escaping is needed: values travel as JSON). A
	// string that is exactly one placeholder takes the variable's type, so
	// "$(amount)" with amount 42 sends the number 42.
	Fields map[string]any `json:"fields"`
	// Variables maps variable names to their values.
	Variables map[string]any `json:"variables,omitempty"`
	// ExternalID, when set, upserts instead of creating.
	ExternalID *ExternalID `json:"external_id,omitempty"`
}

// invalid is an INVALID_REQUEST error, for the request types' own JSON
// decoding.
func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}
