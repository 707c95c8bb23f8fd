package blocks

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sfblocks/sfblocks"
)

// decodeJob decodes payload, one JSON object and nothing else, into v,
// rejecting unknown keys; errors name the key at fault. With scan, the
// job's shape is checked against the limits first (prescan); the fuzz test
// turns it off to compare.
func decodeJob(block sfblocks.Block, payload []byte, maxBytes int, v any, scan bool) error {
	if len(payload) > maxBytes {
		return invalidf("job is %d bytes; the limit is %d bytes", len(payload), maxBytes)
	}
	if !utf8.Valid(payload) {
		return invalidf("job is not valid UTF-8 (at byte %d); send UTF-8 text", invalidUTF8At(payload))
	}
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return invalidf("job must be a JSON object {...}")
	}
	if scan {
		if err := prescan(block, trimmed); err != nil {
			return err
		}
	}
	if r, ok := v.(*sfblocks.SearchRequest); ok {
		if decodeSearchFast(trimmed, r) {
			return nil
		}
		*r = sfblocks.SearchRequest{} // what the fast path read, forgotten
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeError(block, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("job has data after its JSON object; send exactly one object")
	}
	return nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// keysOf lists the JSON keys a block takes, for messages.
var keysOf = map[sfblocks.Block]string{
	sfblocks.Search: jsonKeys(reflect.TypeFor[sfblocks.SearchRequest]()),
	sfblocks.Insert: jsonKeys(reflect.TypeFor[sfblocks.InsertRequest]()),
}

func jsonKeys(t reflect.Type) string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

// typeWords names what a key must hold, where the Go type alone would
// mislead (a wrong element of fields is reported against the key).
var typeWords = map[string]string{
	"fields":            "an array of strings (search) or an object of field values (insert)",
	"where":             "an array of {\"field\",\"op\",\"value\"} objects",
	"variables":         "an object of name: value",
	"external_id":       "an object {\"field\",\"value\"}",
	"where.field":       "a string",
	"where.op":          "a string",
	"where.type":        "a string",
	"external_id.field": "a string",
	"external_id.value": "a string",
}

func decodeError(block sfblocks.Block, err error) error {
	var be *sfblocks.Error
	if errors.As(err, &be) {
		return be
	}
	if k := unknownKey(err); k != "" {
		return invalidf("unknown key %q in the %s job (it takes: %s)", k, block, keysOf[block])
	}
	var ut *json.UnmarshalTypeError
	if errors.As(err, &ut) {
		want, ok := typeWords[ut.Field]
		if !ok {
			want = goTypeWords(ut.Type)
		}
		if ut.Field == "fields" {
			if block == sfblocks.Search {
				want = "an array of strings"
			} else {
				want = "an object of field values"
			}
		}
		if ut.Field == "" {
			return invalidf("job must be a JSON object {...}")
		}
		return invalidf("field %q must be %s", ut.Field, want)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalidf("job is not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return invalidf("job is not valid JSON: it ends too early")
	}
	return invalidf("job is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// unknownKey extracts the key from encoding/json's `unknown field "x"`
// error, which has no type of its own.
func unknownKey(err error) string {
	msg := err.Error()
	i := strings.Index(msg, "unknown field ")
	if i < 0 {
		return ""
	}
	k, uerr := strconv.Unquote(msg[i+len("unknown field "):])
	if uerr != nil {
		return msg[i+len("unknown field "):]
	}
	return k
}

func goTypeWords(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	}
	return "of another type"
}

// checkText validates a short identifying string (id, account).
func checkText(key, s string, maxLen int) error {
	if len(s) > maxLen {
		return invalidf("%s is %d bytes; the limit is %d", key, len(s), maxLen)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return invalidf("%s must be printable text (no control characters)", key)
		}
	}
	return nil
}

// parseVariables validates the variables of a job and converts them to
// their text.
func parseVariables(in map[string]any) (map[string]variable, error) {
	if len(in) > MaxVariables {
		return nil, invalidf("variables has %d entries; the limit is %d", len(in), MaxVariables)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]variable, len(in))
	for name, v := range in {
		if !validVarName(name) {
			return nil, invalidf("variable name %q is not valid: use letters, digits, _ and . (starting with a letter or _), at most %d bytes", clip(name), maxVarNameLen)
		}
		var val variable
		switch t := v.(type) {
		case string:
			val = variable{kind: varString, text: t}
		case json.Number:
			val = variable{kind: varNumber, text: t.String()}
		case bool:
			val = variable{kind: varBool, text: strconv.FormatBool(t)}
		default:
			return nil, invalidf("variable %q must be a string, number or boolean", name)
		}
		if len(val.text) > MaxVariableBytes {
			return nil, invalidf("variable %q is %d bytes; the limit is %d", name, len(val.text), MaxVariableBytes)
		}
		out[name] = val
	}
	return out, nil
}

// clip shortens a caller's string for a message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	for i := 64; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}

func quoteName(s string) string { return strconv.Quote(clip(s)) }

// resolveValue substitutes the placeholders of a string value. A string
// that is exactly one placeholder takes the variable's type.
func resolveValue(v any, vars map[string]variable, where string) (any, error) {
	s, ok := v.(string)
	if !ok || strings.IndexByte(s, '$') < 0 {
		return v, nil
	}
	if name, ok := wholePlaceholder(s); ok {
		val, err := lookupVar(vars, name, where)
		if err != nil {
			return nil, err
		}
		switch val.kind {
		case varNumber:
			return json.Number(val.text), nil
		case varBool:
			return val.text == "true", nil
		}
		return val.text, nil
	}
	return substituteText(s, vars, where)
}
