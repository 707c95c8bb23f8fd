package simdb

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Create inserts a record and returns its 18-character ID. fields is the
// decoded JSON body (string, float64, json.Number, bool, nil values); names
// match case-insensitively. Failures, worded as Salesforce REST does:
//
//   - unknown object → 404 NOT_FOUND "The requested resource does not exist"
//   - Id in the body → 400 INVALID_FIELD "The Id field should not be specified in the sobject data."
//   - unknown field → 400 INVALID_FIELD "No such column 'Foo' on sobject of type Contact"
//   - read-only field → 400 INVALID_FIELD_FOR_INSERT_UPDATE "Unable to create/update fields: X. ..."
//   - wrong JSON type or unparsable date/number → 400 JSON_PARSER_ERROR "Cannot deserialize instance of ..."
//   - text too long → 400 STRING_TOO_LONG; bad email → 400 INVALID_EMAIL_ADDRESS;
//     lookup of the wrong type → 400 MALFORMED_ID; missing parent → 400 INVALID_CROSS_REFERENCE_KEY
//   - missing required field → 400 REQUIRED_FIELD_MISSING "Required fields are missing: [LastName]"
//   - duplicate unique external ID → 400 DUPLICATE_VALUE "duplicate value found: ..."
//     (compared ignoring case unless the field is case-sensitive)
func (db *DB) Create(object string, fields map[string]any) (string, error) {
	t := db.table(object)
	if t == nil {
		return "", notFound()
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	vals, err := db.coerceBody(t.obj, fields, false)
	if err != nil {
		return "", err
	}
	r, err := db.insert(t, vals, false)
	if err != nil {
		return "", err
	}
	return r.id, nil
}

// Upsert creates or updates the record whose field (an External ID field, or
// Id) equals value, and reports whether it was created. The body is
// validated as for [DB.Create] (or as an update when a record matches).
// Matching ignores case only on a Unique field that is not case-sensitive
// (External_Id__c); on [JobIDField] and on non-unique External IDs
// (Legacy_Number__c) "ABC" and "abc" are different values, as Salesforce
// documents. The lookup and the write happen under one lock, so upserts of
// the same new value racing each other make one record: the first creates
// it and the others update it.
// Failures besides Create's: a field that is not an External ID →
// 404 NOT_FOUND "Provided external ID field does not exist or is not
// accessible: Foo"; several matches → *Error{Status: 300, Code:
// MULTIPLE_CHOICES, Matches: record URLs (API version 66.0; the HTTP side may
// rebuild them)}; an Id that matches nothing → 404 NOT_FOUND.
func (db *DB) Upsert(object, field, value string, fields map[string]any) (string, bool, error) {
	t := db.table(object)
	if t == nil {
		return "", false, notFound()
	}
	f := t.obj.field(field)
	if f == nil || !(f.ExternalID || f.Name == "Id") {
		return "", false, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msgBadExternalID + field}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r, created, _, err := db.upsertLocked(t, f, value, fields)
	if err != nil {
		return "", false, err
	}
	return r.id, created, nil
}

// upsertLocked is [DB.Upsert] once the object and field are known. It
// returns the written row, whether it was created, and for an update the
// row's previous values (so a batch can undo it). db.mu must be held.
func (db *DB) upsertLocked(t *table, f *FieldSchema, value string, fields map[string]any) (*row, bool, map[string]any, error) {
	var matches []*row
	if f.Name == "Id" {
		if id, ok := normalizeID(value); ok {
			if r := t.byID[id]; r != nil && !r.deleted {
				matches = append(matches, r)
			}
		}
		if len(matches) == 0 && value != "" {
			return nil, false, nil, notFound()
		}
	} else {
		for _, r := range t.extIx[f.Name][indexKey(f, value)] {
			if !r.deleted {
				matches = append(matches, r)
			}
		}
	}
	switch len(matches) {
	case 0:
		vals, err := db.coerceBody(t.obj, fields, false)
		if err != nil {
			return nil, false, nil, err
		}
		if f.Name != "Id" {
			vals[f.Name] = value
		}
		r, err := db.insert(t, vals, false)
		if err != nil {
			return nil, false, nil, err
		}
		return r, true, nil, nil
	case 1:
		vals, err := db.coerceBody(t.obj, fields, true)
		if err != nil {
			return nil, false, nil, err
		}
		prev := matches[0].vals
		if err := db.update(t, matches[0], vals); err != nil {
			return nil, false, nil, err
		}
		return matches[0], false, prev, nil
	}
	urls := make([]string, len(matches))
	for i, r := range matches {
		urls[i] = recordURL(defaultVersion, t.obj.schema.Name, r.id)
	}
	return nil, false, nil, &Error{Status: http.StatusMultipleChoices, Code: CodeMultipleChoices,
		Message: fmt.Sprintf("More than one record found for external id field %s with value %s", f.Name, value), Matches: urls}
}

// coerceBody validates a request body and converts it to stored values.
// Keys are checked in sorted order so the first error is deterministic.
func (db *DB) coerceBody(obj *object, body map[string]any, update bool) (map[string]any, error) {
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make(map[string]any, len(body))
	var readOnly []string
	for _, k := range keys {
		if strings.EqualFold(k, "Id") {
			return nil, badRequest(CodeInvalidField, "The Id field should not be specified in the sobject data.")
		}
		if strings.EqualFold(k, "attributes") {
			continue // clients may echo a record's attributes; Salesforce ignores them
		}
		f := obj.field(k)
		if f == nil {
			return nil, badRequest(CodeInvalidField, "No such column '"+k+"' on sobject of type "+obj.schema.Name)
		}
		if (!update && !f.Createable) || (update && !f.Updateable) {
			readOnly = append(readOnly, f.Name)
			continue
		}
		v, err := db.coerce(f, body[k])
		if err != nil {
			return nil, err
		}
		vals[f.Name] = v
	}
	if len(readOnly) > 0 {
		return nil, badRequest(CodeInvalidFieldForInsert, "Unable to create/update fields: "+strings.Join(readOnly, ", ")+
			". Please check the security settings of this field and verify that it is read/write for your profile or permission set.", readOnly...)
	}
	return vals, nil
}

// jsonKind names a decoded JSON value the way Salesforce's parser (Jackson)
// names tokens.
func jsonKind(v any) string {
	switch x := v.(type) {
	case string:
		return "VALUE_STRING"
	case bool:
		if x {
			return "VALUE_TRUE"
		}
		return "VALUE_FALSE"
	case float64:
		if x == float64(int64(x)) {
			return "VALUE_NUMBER_INT"
		}
		return "VALUE_NUMBER_FLOAT"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "VALUE_NUMBER_FLOAT"
		}
		return "VALUE_NUMBER_INT"
	case map[string]any:
		return "START_OBJECT"
	case []any:
		return "START_ARRAY"
	}
	return "VALUE_EMBEDDED_OBJECT"
}

func parserError(typ string, v any) error {
	shown := ""
	switch x := v.(type) {
	case map[string]any:
		shown = "{"
	case []any:
		shown = "["
	case float64:
		shown = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		shown = fmt.Sprint(x)
	}
	return badRequest(CodeJSONParserError, "Cannot deserialize instance of "+typ+" from "+jsonKind(v)+" value "+shown+" or request may be missing a required field")
}

// coerce converts one body value to its stored form.
func (db *DB) coerce(f *FieldSchema, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if n, ok := v.(json.Number); ok {
		fv, err := n.Float64()
		if err != nil {
			return nil, parserError(apexType(f.Type), v)
		}
		v = fv
	}
	switch {
	case isText(f.Type):
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(x)
		default:
			return nil, parserError(apexType(f.Type), v)
		}
		if f.Type == "reference" {
			return db.coerceRef(f, s)
		}
		if f.Length > 0 && len([]rune(s)) > f.Length {
			return nil, badRequest(CodeStringTooLong, fmt.Sprintf("%s: data value too large: %s (max length=%d)", f.Label, s, f.Length), f.Name)
		}
		if f.Type == "email" && s != "" && !validEmail(s) {
			return nil, badRequest(CodeInvalidEmail, f.Label+": invalid email address: "+s, f.Name)
		}
		if s == "" {
			return nil, nil // Salesforce stores empty text as null
		}
		return s, nil
	case f.Type == "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.ToLower(x)); err == nil && (strings.EqualFold(x, "true") || strings.EqualFold(x, "false")) {
				return b, nil
			}
		}
		return nil, parserError("boolean", v)
	case isNumber(f.Type):
		switch x := v.(type) {
		case float64:
			if f.Type == "int" && x != float64(int64(x)) {
				return nil, parserError("int", v)
			}
			return x, nil
		case string:
			if fv, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && (f.Type != "int" || fv == float64(int64(fv))) {
				return fv, nil
			}
		}
		return nil, parserError(apexType(f.Type), v)
	case f.Type == "date" || f.Type == "datetime":
		s, ok := v.(string)
		if ok {
			if tm, ok := parseTime(s, f.Type == "date"); ok {
				return tm, nil
			}
		}
		return nil, parserError(f.Type, v)
	}
	return nil, parserError(f.Type, v)
}

func apexType(t string) string {
	switch t {
	case "int":
		return "int"
	case "double", "currency":
		return "double"
	}
	return "string"
}

// parseTime accepts the date and datetime forms the REST API accepts.
func parseTime(s string, dateOnly bool) (time.Time, bool) {
	if dateOnly {
		if len(s) >= 10 {
			if tm, err := time.Parse(dateLayout, s[:10]); err == nil && (len(s) == 10 || s[10] == 'T') {
				return tm, true
			}
		}
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, dateTimeLayout, "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05.000Z0700", dateLayout} {
		if tm, err := time.Parse(layout, s); err == nil {
			return tm.UTC(), true
		}
	}
	return time.Time{}, false
}

func validEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || strings.ContainsAny(s, " ,;<>") {
		return false
	}
	domain := s[at+1:]
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-1
}

// coerceRef validates a lookup value: an ID of one of the referenced objects
// that exists. db.mu must be held.
func (db *DB) coerceRef(f *FieldSchema, s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	id, ok := normalizeID(s)
	var t *table
	if ok {
		t = db.byPrefix[id[:3]]
	}
	if t == nil || !refersTo(f, t.obj.schema.Name) {
		if ok && len(f.ReferenceTo) == 1 && f.ReferenceTo[0] == "User" && id[:3] == "005" {
			return id, nil // users are not stored; accept any user ID
		}
		return nil, badRequest(CodeMalformedID, f.Label+": id value of incorrect type: "+s, f.Name)
	}
	if r := t.byID[id]; r == nil || r.deleted {
		return nil, badRequest(CodeInvalidCrossReference, "invalid cross reference id", f.Name)
	}
	return id, nil
}

func refersTo(f *FieldSchema, object string) bool {
	for _, to := range f.ReferenceTo {
		if to == object {
			return true
		}
	}
	return false
}

// insert stores a new row after checking required fields and unique
// values. seed keeps an explicit Id and system fields. db.mu must be held.
func (db *DB) insert(t *table, vals map[string]any, seed bool) (*row, error) {
	o := t.obj
	for k, v := range o.defaults {
		if _, ok := vals[k]; !ok {
			vals[k] = v
		}
	}
	if err := checkRequired(o, vals); err != nil {
		return nil, err
	}
	if err := t.checkUnique(vals, nil); err != nil {
		return nil, err
	}
	now := db.now().UTC()
	id, _ := vals["Id"].(string)
	if id == "" {
		for {
			db.seq++
			id = makeID(o.schema.KeyPrefix, db.seq)
			if db.byPrefix[id[:3]].byID[id] == nil {
				break
			}
		}
	} else if n := idCounter(id); n > db.seq {
		db.seq = n
	}
	setDefault := func(k string, v any) {
		if _, ok := vals[k]; !ok || !seed {
			vals[k] = v
		}
	}
	vals["Id"] = id
	setDefault("IsDeleted", false)
	setDefault("CreatedDate", now)
	setDefault("CreatedById", UserID)
	setDefault("LastModifiedDate", now)
	setDefault("LastModifiedById", UserID)
	setDefault("SystemModstamp", now)
	if _, ok := vals["OwnerId"]; !ok {
		vals["OwnerId"] = UserID
	}
	if o.schema.Name == "Case" {
		if _, ok := vals["CaseNumber"]; !ok || !seed {
			db.caseNum++
			vals["CaseNumber"] = fmt.Sprintf("%08d", db.caseNum)
		} else if n, err := strconv.Atoi(fmt.Sprint(vals["CaseNumber"])); err == nil && n > db.caseNum {
			db.caseNum = n
		}
	}
	derive(o, vals, now)
	r := &row{id: id, vals: vals, deleted: vals["IsDeleted"] == true}
	t.rows = append(t.rows, r)
	t.byID[id] = r
	t.index(r)
	return r, nil
}

// update applies validated values to an existing row. db.mu must be held.
func (db *DB) update(t *table, r *row, vals map[string]any) error {
	merged := make(map[string]any, len(r.vals)+len(vals))
	for k, v := range r.vals {
		merged[k] = v
	}
	for k, v := range vals {
		merged[k] = v
	}
	if err := checkRequired(t.obj, merged); err != nil {
		return err
	}
	if err := t.checkUnique(vals, r); err != nil {
		return err
	}
	t.unindex(r)
	now := db.now().UTC()
	merged["LastModifiedDate"] = now
	merged["SystemModstamp"] = now
	derive(t.obj, merged, now)
	r.vals = merged
	t.index(r)
	return nil
}

func checkRequired(o *object, vals map[string]any) error {
	var missing []string
	for _, name := range o.required {
		if vals[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return badRequest(CodeRequiredFieldMissing, "Required fields are missing: ["+strings.Join(missing, ", ")+"]", missing...)
	}
	return nil
}

// checkUnique rejects a value of a unique field already held by another
// live row.
func (t *table) checkUnique(vals map[string]any, self *row) error {
	for i := range t.obj.schema.Fields {
		f := &t.obj.schema.Fields[i]
		if !f.Unique {
			continue
		}
		s, _ := vals[f.Name].(string)
		if s == "" {
			continue
		}
		for _, other := range t.extIx[f.Name][indexKey(f, s)] {
			if other != self && !other.deleted {
				return badRequest(CodeDuplicateValue, "duplicate value found: "+f.Name+" duplicates value on record with id: "+other.id, f.Name)
			}
		}
	}
	return nil
}

func (t *table) index(r *row) {
	for name, ix := range t.extIx {
		if s, _ := r.vals[name].(string); s != "" {
			k := indexKey(t.obj.field(name), s)
			ix[k] = append(ix[k], r)
		}
	}
}

func (t *table) unindex(r *row) {
	for name, ix := range t.extIx {
		if s, _ := r.vals[name].(string); s != "" {
			k := indexKey(t.obj.field(name), s)
			list := ix[k]
			for i, x := range list {
				if x == r {
					ix[k] = append(list[:i:i], list[i+1:]...)
					break
				}
			}
		}
	}
}

// derive recomputes fields Salesforce computes: the compound Name of
// Contact and Lead, and IsClosed / ClosedDate from Status.
func derive(o *object, vals map[string]any, now time.Time) {
	switch o.schema.Name {
	case "Contact", "Lead":
		first, _ := vals["FirstName"].(string)
		last, _ := vals["LastName"].(string)
		vals["Name"] = strings.TrimSpace(first + " " + last)
	case "Case":
		closed := vals["Status"] == "Closed"
		vals["IsClosed"] = closed
		if closed && vals["ClosedDate"] == nil {
			vals["ClosedDate"] = now
		} else if !closed {
			vals["ClosedDate"] = nil
		}
	case "Task":
		vals["IsClosed"] = vals["Status"] == "Completed"
	}
}
