package blocks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/schema"
)

func loadSchema(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("schema $schema = %v", s["$schema"])
	}
	return s
}

// tagsOf returns the JSON keys of a struct and those without omitempty.
func tagsOf(t reflect.Type) (keys, required []string) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue // in-process only, never encoded (sfblocks.Reply.Err)
		}
		keys = append(keys, name)
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	slices.Sort(keys)
	slices.Sort(required)
	return keys, required
}

func schemaKeys(s map[string]any) (keys, required []string) {
	for k := range s["properties"].(map[string]any) {
		keys = append(keys, k)
	}
	for _, r := range asSlice(s["required"]) {
		required = append(required, r.(string))
	}
	slices.Sort(keys)
	slices.Sort(required)
	return keys, required
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestSchemasMatchGoTypes(t *testing.T) {
	sreq := loadSchema(t, schema.SearchRequest())
	ireq := loadSchema(t, schema.InsertRequest())
	srep := loadSchema(t, schema.SearchReply())
	irep := loadSchema(t, schema.InsertReply())
	def := func(s map[string]any, name string) map[string]any {
		return s["$defs"].(map[string]any)[name].(map[string]any)
	}
	tests := []struct {
		name   string
		schema map[string]any
		typ    reflect.Type
	}{
		{"search request", sreq, reflect.TypeFor[sfblocks.SearchRequest]()},
		{"insert request", ireq, reflect.TypeFor[sfblocks.InsertRequest]()},
		{"condition", def(sreq, "condition"), reflect.TypeFor[sfblocks.Condition]()},
		{"order", def(sreq, "order"), reflect.TypeFor[sfblocks.Order]()},
		{"external id", def(ireq, "external_id"), reflect.TypeFor[sfblocks.ExternalID]()},
		{"search reply error", def(srep, "error"), reflect.TypeFor[sfblocks.ErrorInfo]()},
		{"insert reply error", def(irep, "error"), reflect.TypeFor[sfblocks.ErrorInfo]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantKeys, wantReq := tagsOf(tt.typ)
			gotKeys, gotReq := schemaKeys(tt.schema)
			if !slices.Equal(gotKeys, wantKeys) {
				t.Errorf("schema properties %v\n  Go json keys %v", gotKeys, wantKeys)
			}
			if !slices.Equal(gotReq, wantReq) {
				t.Errorf("schema required %v\n  Go keys without omitempty %v", gotReq, wantReq)
			}
			if tt.schema["additionalProperties"] != false {
				t.Error("schema must set additionalProperties false, as the decoder rejects unknown keys")
			}
		})
	}
	// The two reply schemas share Reply: together they cover its keys, and
	// each requires what Reply always writes.
	wantKeys, wantReq := tagsOf(reflect.TypeFor[sfblocks.Reply]())
	sk, sr := schemaKeys(srep)
	ik, ir := schemaKeys(irep)
	union := slices.Compact(slices.Sorted(slices.Values(append(sk, ik...))))
	if !slices.Equal(union, wantKeys) {
		t.Errorf("reply schema properties %v\n  Reply json keys %v", union, wantKeys)
	}
	if !slices.Equal(sr, wantReq) || !slices.Equal(ir, wantReq) {
		t.Errorf("reply required %v / %v, want %v", sr, ir, wantReq)
	}
	codes := asSlice(def(srep, "error")["properties"].(map[string]any)["code"].(map[string]any)["enum"])
	for _, c := range []sfblocks.Code{sfblocks.CodeInvalidRequest, sfblocks.CodeUnknownAccount, sfblocks.CodeAuthFailed, sfblocks.CodeSalesforceError, sfblocks.CodeRateLimited, sfblocks.CodeSalesforceUnavailable, sfblocks.CodeTimeout, sfblocks.CodeInternal} {
		if !slices.Contains(codes, any(string(c))) {
			t.Errorf("reply schema lacks code %s", c)
		}
	}
	entries, err := schema.FS.ReadDir(".")
	if err != nil || len(entries) != 4 {
		t.Errorf("schema.FS holds %d files (%v), want 4", len(entries), err)
	}
}

// TestSampleJobs checks every job in testdata/jobs: ok-* jobs must pass the
// decoder and the schema; bad-* jobs must be refused by the decoder with the
// listed message, and by the schema when schemaRejects says so.
func TestSampleJobs(t *testing.T) {
	bad := map[string]struct {
		msg           string
		schemaRejects bool
	}{
		"search/bad-unknown-key.json":          {`unknown key "maxRecords"`, true},
		"search/bad-both-forms.json":           {"give either query or the structured form", true},
		"search/bad-text-outside-quotes.json":  {`variable "name" stands outside quotes`, false},
		"search/bad-missing-variable.json":     {`uses variable "ani", which is not in variables`, false},
		"search/bad-max-records-type.json":     {`field "max_records" must be a whole number`, true},
		"search/bad-field-name.json":           {`fields[1] "Name FROM User" is not a valid field name`, true},
		"search/bad-trailing-data.json":        {"job has data after its JSON object", false},
		"insert/bad-no-fields.json":            {"fields is required", true},
		"insert/bad-id-field.json":             {"field Id cannot be set", true},
		"insert/bad-object-name.json":          {`object "Contact/003000000000001" is not a valid API name`, true},
		"insert/bad-nested-value.json":         {`field "LastName" must be a string, number, boolean or null`, true},
		"insert/bad-external-id-conflict.json": {`is also external_id.field with another value`, false},
	}
	schemas := map[sfblocks.Block]map[string]any{
		sfblocks.Search: loadSchema(t, schema.SearchRequest()),
		sfblocks.Insert: loadSchema(t, schema.InsertRequest()),
	}
	ex := newTestExecutor(t, nil)
	seen := 0
	for _, block := range []sfblocks.Block{sfblocks.Search, sfblocks.Insert} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", "jobs", string(block), "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no sample jobs for %s: %v", block, err)
		}
		for _, file := range files {
			name := string(block) + "/" + filepath.Base(file)
			t.Run(name, func(t *testing.T) {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				_, decErr := ex.Decode(block, data)
				var doc any
				dec := json.NewDecoder(bytes.NewReader(data))
				schemaErr := dec.Decode(&doc)
				if schemaErr == nil {
					schemaErr = validate(schemas[block], schemas[block], doc, "")
				}
				switch {
				case strings.HasPrefix(filepath.Base(file), "ok-"):
					if decErr != nil {
						t.Errorf("decoder refused a valid sample: %v", decErr)
					}
					if schemaErr != nil {
						t.Errorf("schema refused a valid sample: %v", schemaErr)
					}
				case strings.HasPrefix(filepath.Base(file), "bad-"):
					want, ok := bad[name]
					if !ok {
						t.Fatalf("add %s to the table of this test", name)
					}
					seen++
					if decErr == nil || !strings.Contains(decErr.Error(), want.msg) {
						t.Errorf("decoder error = %v, want %q", decErr, want.msg)
					}
					if want.schemaRejects && schemaErr == nil {
						t.Errorf("schema accepts a job the decoder refuses")
					}
				default:
					t.Errorf("sample names start with ok- or bad-")
				}
			})
		}
	}
	if seen != len(bad) {
		t.Errorf("saw %d bad samples, table lists %d", seen, len(bad))
	}
}

// validate is a small JSON Schema checker covering the keywords the
// schemas use; it exists so the samples test the schemas, not only the Go
// decoder.
func validate(root, s map[string]any, v any, path string) error {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		return validate(root, root["$defs"].(map[string]any)[name].(map[string]any), v, path)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	if ty, ok := s["type"]; ok {
		types := asSlice(ty)
		if types == nil {
			types = []any{ty}
		}
		if !slices.ContainsFunc(types, func(t any) bool { return jsonType(v, t.(string)) }) {
			return fail("want type %v", ty)
		}
	}
	if enum, ok := s["enum"]; ok && !slices.Contains(asSlice(enum), v) {
		return fail("not one of %v", enum)
	}
	if n, ok := v.(float64); ok {
		if min, ok := s["minimum"].(float64); ok && n < min {
			return fail("below minimum")
		}
		if max, ok := s["maximum"].(float64); ok && n > max {
			return fail("above maximum")
		}
	}
	if str, ok := v.(string); ok {
		if max, ok := s["maxLength"].(float64); ok && float64(len([]rune(str))) > max {
			return fail("too long")
		}
		if min, ok := s["minLength"].(float64); ok && float64(len([]rune(str))) < min {
			return fail("too short")
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			return fail("does not match %s", p)
		}
	}
	if arr, ok := v.([]any); ok {
		if max, ok := s["maxItems"].(float64); ok && float64(len(arr)) > max {
			return fail("too many items")
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, it := range arr {
				if err := validate(root, items, it, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		if max, ok := s["maxProperties"].(float64); ok && float64(len(obj)) > max {
			return fail("too many properties")
		}
		for _, r := range asSlice(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				return fail("missing %s", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range obj {
			if pn, ok := s["propertyNames"].(map[string]any); ok {
				if err := validate(root, pn, k, path+"."+k+"(name)"); err != nil {
					return err
				}
			}
			if ps, ok := props[k].(map[string]any); ok {
				if err := validate(root, ps, val, path+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fail("unknown key %s", k)
				}
			case map[string]any:
				if err := validate(root, ap, val, path+"."+k); err != nil {
					return err
				}
			}
		}
	}
	if not, ok := s["not"].(map[string]any); ok && validate(root, not, v, path) == nil {
		return fail("matches a schema it must not")
	}
	if one, ok := s["oneOf"]; ok {
		n := 0
		for _, sub := range asSlice(one) {
			if validate(root, sub.(map[string]any), v, path) == nil {
				n++
			}
		}
		if n != 1 {
			return fail("matches %d of oneOf, want 1", n)
		}
	}
	return nil
}

func jsonType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		n, ok := v.(float64)
		return ok && n == math.Trunc(n)
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	}
	return false
}
