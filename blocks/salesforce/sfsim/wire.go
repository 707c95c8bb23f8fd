package sfsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// contentTypeJSON is the Content-Type Salesforce puts on every JSON answer.
const contentTypeJSON = "application/json;charset=UTF-8"

// Messages worded as Salesforce words them.
const (
	msgNotFound       = "The requested resource does not exist"
	msgSessionInvalid = "Session expired or invalid"
	msgLimitExceeded  = "TotalRequests Limit exceeded."
	// msgConcurrentLimit is the concurrent-request limit's message; the
	// errorCode is REQUEST_LIMIT_EXCEEDED as for the daily limit.
	msgConcurrentLimit = "ConcurrentRequests (Concurrent API Requests) Limit exceeded."
	// msgTooManyChunks is the Apex wording of the 10-chunk rule; the REST
	// wording is not documented (see collectionsCreate).
	msgTooManyChunks = "Cannot have more than 10 chunks in a single operation. Please rearrange the data to reduce chunking."
	msgLocator       = "invalid query locator"
	msgRolledBack    = "Record rolled back because not all records were valid and the request was using AllOrNone header"
)

// apiError is one element of a REST error array: [{"message","errorCode","fields"}].
// Fields is omitted when nil, as Salesforce omits it for most errors, and
// written (possibly as []) when non-nil, as on DML errors.
type apiError struct {
	Message string   `json:"message"`
	Code    string   `json:"errorCode"`
	Fields  []string `json:"fields"`
}

// MarshalJSON writes "fields" only when Fields is non-nil.
func (e apiError) MarshalJSON() ([]byte, error) {
	type plain apiError
	var v any = plain(e)
	if e.Fields == nil {
		v = struct {
			Message string `json:"message"`
			Code    string `json:"errorCode"`
		}{e.Message, e.Code}
	}
	// Not json.Marshal: it would escape <, > and & in query messages,
	// which Salesforce sends as they are.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// writeJSON answers status with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own types are encoded here, so this is a programming error;
		// answer as Salesforce does for an unexpected failure.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`[{"message":"An unexpected error occurred.","errorCode":"UNKNOWN_EXCEPTION"}]`)
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

// writeErrors answers status with a Salesforce error array.
func writeErrors(w http.ResponseWriter, status int, errs ...apiError) {
	writeJSON(w, status, errs)
}

// writeDBError maps an error from simdb onto the wire: a *simdb.Error keeps
// its status and code (300 answers carry the matching record URLs instead);
// anything else is a 500 UNKNOWN_EXCEPTION.
func writeDBError(w http.ResponseWriter, err error) {
	var de *simdb.Error
	if errors.As(err, &de) {
		if de.Status == http.StatusMultipleChoices {
			matches := de.Matches
			if matches == nil {
				matches = []string{}
			}
			writeJSON(w, de.Status, matches)
			return
		}
		status := de.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		writeErrors(w, status, apiError{Message: de.Message, Code: de.Code, Fields: fieldsFor(de)})
		return
	}
	writeErrors(w, http.StatusInternalServerError, apiError{
		Message: "An unexpected error occurred. Please include this ErrorId if you contact support: 1190512437-16813 (-1404785104)",
		Code:    "UNKNOWN_EXCEPTION",
	})
}

// fieldsFor returns the fields list for an error that carries one.
// Salesforce includes "fields" on DML errors, so an empty list is kept there.
func fieldsFor(de *simdb.Error) []string {
	if de.Fields != nil {
		return de.Fields
	}
	switch de.Code {
	case "REQUIRED_FIELD_MISSING", "INVALID_FIELD_FOR_INSERT_UPDATE", "DUPLICATE_VALUE", "UNABLE_TO_LOCK_ROW":
		return []string{}
	}
	return nil
}

// decodeBody reads a JSON request body into v. A malformed body yields a
// JSON_PARSER_ERROR worded like the Jackson parser Salesforce uses.
func decodeBody(r *http.Request, v any) *apiError {
	data, err := io.ReadAll(io.LimitReader(r.Body, 50<<20))
	if err != nil {
		return &apiError{Code: "JSON_PARSER_ERROR", Message: "Unexpected end-of-input within/between Object entries at [line:1, column:1]"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return &apiError{Code: "JSON_PARSER_ERROR", Message: parserMessage(data, err)}
	}
	return nil
}

// parserMessage words a Go JSON decoding error the way Salesforce does.
func parserMessage(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF) && len(bytes.TrimSpace(data)) == 0:
		return "No content to map due to end-of-input at [line:1, column:0]"
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := lineCol(data, int64(len(data)))
		return fmt.Sprintf("Unexpected end-of-input: expected close marker for OBJECT (from [line:1, column:1]) at [line:%d, column:%d]", line, col)
	case errors.As(err, &syn):
		off := syn.Offset - 1
		if off < 0 {
			off = 0
		}
		if off >= int64(len(data)) {
			line, col := lineCol(data, int64(len(data)))
			return fmt.Sprintf("Unexpected end-of-input: expected close marker for OBJECT (from [line:1, column:1]) at [line:%d, column:%d]", line, col)
		}
		c := data[off]
		line, col := lineCol(data, off+1)
		return fmt.Sprintf("Unexpected character ('%c' (code %d)): expected a valid value (number, String, array, object, 'true', 'false' or 'null') at [line:%d, column:%d]", c, c, line, col)
	case errors.As(err, &typ):
		token := "START_ARRAY"
		switch typ.Value {
		case "object":
			token = "START_OBJECT"
		case "string":
			token = "VALUE_STRING"
		case "number":
			token = "VALUE_NUMBER_INT"
		case "bool":
			token = "VALUE_TRUE"
		}
		line, col := lineCol(data, typ.Offset)
		return fmt.Sprintf("Cannot deserialize instance of %s out of %s token at [line:%d, column:%d]", javaType(typ.Type.Kind().String()), token, line, col)
	}
	return "Unexpected character: " + strings.TrimSpace(err.Error())
}

func javaType(kind string) string {
	switch kind {
	case "map", "struct":
		return "SObject"
	case "slice":
		return "List"
	}
	return kind
}

// lineCol converts a byte offset into Jackson's 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	line, col = 1, 0
	for i := int64(0); i < off && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 0
			continue
		}
		col++
	}
	return line, col
}

// methodNotAllowed answers 405 as Salesforce does, naming the allowed methods.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeErrors(w, http.StatusMethodNotAllowed, apiError{
		Code:    "METHOD_NOT_ALLOWED",
		Message: fmt.Sprintf("HTTP Method '%s' not allowed. Allowed are %s", r.Method, strings.Join(allowed, ",")),
	})
}

// allow reports whether r's method is one of allowed, answering 405 if not.
// HEAD is allowed wherever GET is.
func allow(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	list := allowed
	for _, m := range allowed {
		if m == http.MethodGet {
			list = append([]string{http.MethodHead}, allowed...)
			break
		}
	}
	methodNotAllowed(w, r, list...)
	return false
}
