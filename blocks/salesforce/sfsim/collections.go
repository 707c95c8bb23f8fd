package sfsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// collectionsBody is the body of POST composite/sobjects and PATCH
// composite/sobjects/{Object}/{Field}.
type collectionsBody struct {
	AllOrNone bool              `json:"allOrNone"`
	Records   []json.RawMessage `json:"records"`
}

// maxChunks is the documented cap on runs of one record type in a
// collections request.
const maxChunks = 10

// chunks counts the runs of consecutive records of one type.
func chunks(batch []simdb.BatchRecord) int {
	n := 0
	for i, b := range batch {
		if i == 0 || !strings.EqualFold(b.Object, batch[i-1].Object) {
			n++
		}
	}
	return n
}

// maxCollection is the documented cap on records in one collections request.
const maxCollection = 200

// minCollectionsUpsertVersion is the first API version with upsert by
// sObject Collections, as Salesforce documents.
const minCollectionsUpsertVersion = 46

// readCollection decodes and bounds a collections body, answering the
// request itself (and reporting false) when it is malformed or too large.
func readCollection(w http.ResponseWriter, r *http.Request) (collectionsBody, bool) {
	var body collectionsBody
	if e := decodeBody(r, &body); e != nil {
		writeErrors(w, http.StatusBadRequest, *e)
		return body, false
	}
	if len(body.Records) > maxCollection {
		writeErrors(w, http.StatusBadRequest, apiError{
			Code:    "EXCEEDED_ID_LIMIT",
			Message: "record limit reached. cannot submit more than 200 records into this call",
			Fields:  []string{},
		})
		return body, false
	}
	return body, true
}

// decodeRecord reads one record of a collection: its fields (numbers as
// float64, "attributes" removed) and its attributes.type. A record that is
// not a JSON object, or names no type, fails on its own with the error
// returned.
func decodeRecord(raw json.RawMessage) (map[string]any, string, error) {
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return nil, "", recordFailure("JSON_PARSER_ERROR", parserMessage(raw, err))
	}
	var object string
	if attrs, ok := fields["attributes"].(map[string]any); ok {
		object, _ = attrs["type"].(string)
	}
	if fields == nil || object == "" {
		return nil, "", recordFailure("INVALID_TYPE", "Must send a concrete entity type.")
	}
	delete(fields, "attributes")
	jsonNumberToAny(fields)
	return fields, object, nil
}

// recordFailure is a per-record failure decided before the database.
func recordFailure(code, msg string) error {
	return &simdb.Error{Status: http.StatusBadRequest, Code: code, Message: msg, Fields: []string{}}
}

// lockError is the injected UNABLE_TO_LOCK_ROW for one record of a
// collection, or nil.
func (s *Server) lockError(object string) error {
	le, ok := s.lockFault(object, "")
	if !ok {
		return nil
	}
	return &simdb.Error{Status: http.StatusBadRequest, Code: le.Code, Message: le.Message, Fields: le.Fields}
}

// batchFailure turns a record's error into the errors array of its result.
func batchFailure(err error) []recordError {
	var de *simdb.Error
	if !errors.As(err, &de) {
		return []recordError{{StatusCode: "UNKNOWN_EXCEPTION", Message: "An unexpected error occurred.", Fields: []string{}}}
	}
	fields := de.Fields
	if fields == nil {
		fields = []string{}
	}
	return []recordError{{StatusCode: de.Code, Message: de.Message, Fields: fields}}
}

// prepareBatch decodes every record of a collection. A record that cannot
// be decoded stays in the batch, refused by the returned check, so an
// allOrNone batch rolls back for it like for any other failure; check also
// injects UNABLE_TO_LOCK_ROW.
func (s *Server) prepareBatch(raws []json.RawMessage) ([]simdb.BatchRecord, func(i int) error) {
	batch := make([]simdb.BatchRecord, len(raws))
	early := make([]error, len(raws))
	for i, raw := range raws {
		fields, object, err := decodeRecord(raw)
		batch[i] = simdb.BatchRecord{Object: object, Fields: fields}
		if err != nil {
			early[i] = err
		}
	}
	check := func(i int) error {
		if early[i] != nil {
			return early[i]
		}
		return s.lockError(batch[i].Object)
	}
	return batch, check
}

// collectionsCreate is POST composite/sobjects: up to 200 records of any
// types, created in order under one database lock, each with its own
// SaveResult; with allOrNone one failure rolls back the lot.
func (s *Server) collectionsCreate(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.countCall(KindCollections)
	body, ok := readCollection(w, r)
	if !ok {
		return
	}
	batch, check := s.prepareBatch(body.Records)
	if chunks(batch) > maxChunks {
		// Salesforce documents the rule ("a single request can process up to
		// 10 chunks") but not the REST answer; the simulator refuses the
		// request as a whole with Apex's wording, which is what a client
		// must avoid either way.
		writeErrors(w, http.StatusBadRequest, apiError{Code: "INVALID_BATCH_REQUEST", Message: msgTooManyChunks})
		return
	}
	out := s.db.CreateBatch(batch, body.AllOrNone, func(i int, _ string) error { return check(i) })
	results := make([]saveResult, len(out))
	created := 0
	for i, res := range out {
		if res.Err != nil {
			results[i] = saveResult{ID: res.ID, Success: false, Errors: batchFailure(res.Err)}
			continue
		}
		results[i] = saveResult{ID: res.ID, Success: true, Errors: []recordError{}}
		created++
	}
	s.finishCollection(w, r, created, results)
}

// collectionUpsertResult is one element of a collections upsert answer: an
// UpsertResult. A failed record carries no id, unless allOrNone rolled it back.
type collectionUpsertResult struct {
	ID      string        `json:"id,omitempty"`
	Success bool          `json:"success"`
	Errors  []recordError `json:"errors"`
	Created bool          `json:"created"`
}

// collectionsUpsert is PATCH composite/sobjects/{Object}/{Field} (API 46.0
// and later): up to 200 records of Object, each created or updated by its
// own value of the external ID field Field, in order under one database
// lock. Every record must name Object as its attributes.type.
func (s *Server) collectionsUpsert(w http.ResponseWriter, r *http.Request, c *reqCtx, object, field string) {
	s.countCall(KindCollectionsUpsert)
	if !versionAtLeast(c.version, minCollectionsUpsertVersion) {
		writeErrors(w, http.StatusNotFound, apiError{Code: "NOT_FOUND", Message: msgNotFound})
		return
	}
	body, ok := readCollection(w, r)
	if !ok {
		return
	}
	batch, check := s.prepareBatch(body.Records)
	records := make([]map[string]any, len(batch))
	for i, b := range batch {
		records[i] = b.Fields
	}
	out, err := s.db.UpsertBatch(object, field, records, body.AllOrNone, func(i int) error {
		if batch[i].Object != "" && !strings.EqualFold(batch[i].Object, object) {
			// "The list can contain objects only of the type indicated in
			// the request URI."
			return recordFailure("INVALID_TYPE", "Record type "+batch[i].Object+" does not match the sObject type "+object+" of the request")
		}
		return check(i)
	})
	if err != nil {
		writeDBError(w, err)
		return
	}
	results := make([]collectionUpsertResult, len(out))
	created := 0
	for i, res := range out {
		if res.Err != nil {
			results[i] = collectionUpsertResult{ID: res.ID, Errors: batchFailure(res.Err)}
			continue
		}
		results[i] = collectionUpsertResult{ID: res.ID, Success: true, Errors: []recordError{}, Created: res.Created}
		if res.Created {
			created++
		}
	}
	s.finishCollection(w, r, created, results)
}

// finishCollection counts what a collection created and answers results,
// unless the collection committed something and the commit-then-drop fault
// loses the answer.
func (s *Server) finishCollection(w http.ResponseWriter, r *http.Request, created int, results any) {
	s.stats.add(func(st *Stats) { st.RecordsCreated += int64(created) })
	if committedAny(results) && s.loseAnswer(w, r, created) {
		return
	}
	writeJSON(w, http.StatusOK, results)
}

// committedAny reports whether any record of a collection answer succeeded,
// which is when the request committed something.
func committedAny(results any) bool {
	switch rs := results.(type) {
	case []saveResult:
		for _, r := range rs {
			if r.Success {
				return true
			}
		}
	case []collectionUpsertResult:
		for _, r := range rs {
			if r.Success {
				return true
			}
		}
	}
	return false
}
