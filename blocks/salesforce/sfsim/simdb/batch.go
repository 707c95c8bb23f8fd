package simdb

import (
	"net/http"
	"strings"
)

// BatchRecord is one record of an sObject Collections request: its object
// type (from "attributes") and its field values.
type BatchRecord struct {
	Object string
	Fields map[string]any
}

// BatchResult is the outcome of one record of a batch: the record's ID and
// whether it was created, or the *Error that refused it. Created is false
// when Err is set, and so is ID, except for a record rolled back by
// allOrNone ([CodeAllOrNoneRolledBack]): it keeps the ID it was given, as
// Salesforce's answer shows it, though no record has that ID any more.
type BatchResult struct {
	ID      string
	Created bool
	Err     error
}

// CodeAllOrNoneRolledBack is the statusCode of a record that was valid but
// rolled back because another record of an allOrNone batch failed.
const CodeAllOrNoneRolledBack = "ALL_OR_NONE_OPERATION_ROLLED_BACK"

// msgRolledBack is Salesforce's wording for [CodeAllOrNoneRolledBack].
const msgRolledBack = "Record rolled back because not all records were valid and the request was using AllOrNone header"

// undoEntry reverses one write of a batch: a created row is removed, an
// updated row gets its previous values back.
type undoEntry struct {
	t    *table
	r    *row
	prev map[string]any // nil for a created row
}

// CreateBatch inserts records in order, as POST composite/sobjects does,
// under one lock, so no reader sees part of an allOrNone batch. check, when
// non-nil, runs before each record is written and can refuse it (the
// simulator injects UNABLE_TO_LOCK_ROW this way). Each result carries what
// [DB.Create] would have returned. With allOrNone, one failure undoes every
// write of the batch — the records are gone, not soft-deleted, as a
// rolled-back Salesforce transaction leaves nothing behind — and every record
// that did not fail itself reports [CodeAllOrNoneRolledBack].
func (db *DB) CreateBatch(records []BatchRecord, allOrNone bool, check func(i int, object string) error) []BatchResult {
	db.mu.Lock()
	defer db.mu.Unlock()
	results := make([]BatchResult, len(records))
	var log []undoEntry
	for i, rec := range records {
		if check != nil {
			if err := check(i, rec.Object); err != nil {
				results[i].Err = err
				continue
			}
		}
		t := db.table(rec.Object)
		if t == nil {
			results[i].Err = notFound()
			continue
		}
		vals, err := db.coerceBody(t.obj, rec.Fields, false)
		if err == nil {
			var r *row
			if r, err = db.insert(t, vals, false); err == nil {
				log = append(log, undoEntry{t: t, r: r})
				results[i] = BatchResult{ID: r.id, Created: true}
			}
		}
		results[i].Err = err
	}
	db.finishBatch(results, log, allOrNone)
	return results
}

// UpsertBatch creates or updates records of one object by the external ID
// field, in order, as PATCH composite/sobjects/{Object}/{Field} does: each
// record's own value of field is its key. It fails as a whole, writing
// nothing, with 404 NOT_FOUND for an unknown object or a field that is not an
// External ID ("Provided external ID field does not exist or is not
// accessible: Foo"). Per record, besides [DB.Upsert]'s failures: a record
// without a value for field gets MISSING_ARGUMENT "<Field> not specified";
// records of the batch sharing a value (compared as the field matches) all
// get DUPLICATE_VALUE "Duplicate external id specified: <value>", since
// which one should win is undefined. check and allOrNone work as in
// [DB.CreateBatch].
func (db *DB) UpsertBatch(object, field string, records []map[string]any, allOrNone bool, check func(i int) error) ([]BatchResult, error) {
	t := db.table(object)
	if t == nil {
		return nil, notFound()
	}
	f := t.obj.field(field)
	if f == nil || !f.ExternalID {
		return nil, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msgBadExternalID + field}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	results := make([]BatchResult, len(records))
	keys := make([]string, len(records))
	seen := map[string]int{}
	values := make([]string, len(records))
	errs := make([]error, len(records))
	for i, body := range records {
		v, err := db.coerce(f, fieldValue(body, f.Name))
		if err != nil {
			errs[i] = err
			continue
		}
		values[i], _ = v.(string)
		if values[i] == "" {
			continue
		}
		keys[i] = indexKey(f, values[i])
		seen[keys[i]]++
	}
	var log []undoEntry
	for i, body := range records {
		value := values[i]
		switch {
		case errs[i] != nil:
			results[i].Err = errs[i]
			continue
		case value == "":
			results[i].Err = badRequest(CodeMissingArgument, f.Name+" not specified", f.Name)
			continue
		case seen[keys[i]] > 1:
			results[i].Err = badRequest(CodeDuplicateValue, "Duplicate external id specified: "+value, f.Name)
			continue
		}
		if check != nil {
			if err := check(i); err != nil {
				results[i].Err = err
				continue
			}
		}
		r, created, prev, err := db.upsertLocked(t, f, value, body)
		if err != nil {
			results[i].Err = err
			continue
		}
		log = append(log, undoEntry{t: t, r: r, prev: prev})
		results[i] = BatchResult{ID: r.id, Created: created}
	}
	db.finishBatch(results, log, allOrNone)
	return results, nil
}

// finishBatch undoes the batch's writes when allOrNone and any record
// failed, marking the records that did not fail themselves as rolled back.
// db.mu must be held.
func (db *DB) finishBatch(results []BatchResult, log []undoEntry, allOrNone bool) {
	if !allOrNone {
		return
	}
	failed := false
	for _, r := range results {
		if r.Err != nil {
			failed = true
			break
		}
	}
	if !failed {
		return
	}
	for i := len(log) - 1; i >= 0; i-- {
		log[i].undo()
	}
	for i := range results {
		if results[i].Err == nil {
			results[i] = BatchResult{ID: results[i].ID, Err: badRequest(CodeAllOrNoneRolledBack, msgRolledBack)}
		}
	}
}

// undo reverses one write. db.mu must be held.
func (u undoEntry) undo() {
	t, r := u.t, u.r
	t.unindex(r)
	if u.prev != nil {
		r.vals = u.prev
		t.index(r)
		return
	}
	delete(t.byID, r.id)
	for i := len(t.rows) - 1; i >= 0; i-- {
		if t.rows[i] == r {
			t.rows = append(t.rows[:i], t.rows[i+1:]...)
			break
		}
	}
}

// fieldValue reads a body value by field name, ignoring case as the REST
// API does.
func fieldValue(body map[string]any, name string) any {
	if v, ok := body[name]; ok {
		return v
	}
	for k, v := range body {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}
