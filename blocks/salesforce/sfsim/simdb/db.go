package simdb

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// row is one stored record. vals maps canonical field names to stored
// values: string, bool, float64, time.Time (UTC) or nil (absent = null).
type row struct {
	id      string
	vals    map[string]any
	deleted bool
}

// table holds the rows of one object in insertion order plus indexes.
type table struct {
	obj   *object
	rows  []*row
	byID  map[string]*row
	extIx map[string]map[string][]*row // external-ID field → lower-case value → rows
}

// DB is the in-memory database. It is safe for concurrent use; reads
// (Query, Search, Get, Describe) share a lock and writes are exclusive.
type DB struct {
	mu       sync.RWMutex
	objects  []*object
	byName   map[string]*table // lower-case object name
	byPrefix map[string]*table
	seq      int // last ID counter used, shared by all objects
	caseNum  int // last CaseNumber
	now      func() time.Time
}

// New returns an empty database with the schema of Account (key prefix 001),
// Contact (003), Case (500), Lead (00Q) and Task (00T).
func New() *DB {
	db := &DB{byName: map[string]*table{}, byPrefix: map[string]*table{}, caseNum: 1000, now: time.Now}
	for _, o := range buildObjects() {
		t := &table{obj: o, byID: map[string]*row{}, extIx: map[string]map[string][]*row{}}
		for _, f := range o.schema.Fields {
			if f.ExternalID {
				t.extIx[f.Name] = map[string][]*row{}
			}
		}
		db.objects = append(db.objects, o)
		db.byName[strings.ToLower(o.schema.Name)] = t
		db.byPrefix[o.schema.KeyPrefix] = t
	}
	return db
}

// Default returns [New] loaded with the seed data embedded in the module
// ([SeedData], seed/*.json): about 100 Accounts, 300
// Contacts, 150 Cases, 100 Leads and 200 Tasks, including the fixtures
// Account "Acme Corporation", Contact "Ada Byron" (Phone "+1 415 555 0100",
// Email "ada@example.com") and Contact "Siobhan O'Brien".
func Default() (*DB, error) {
	db := New()
	if err := db.LoadSeed(SeedData, "seed"); err != nil {
		return nil, err
	}
	return db, nil
}

// SetNow replaces the clock used for CreatedDate and friends and for
// relative date literals (TODAY, LAST_N_DAYS:n). Defaults to time.Now.
func (db *DB) SetNow(now func() time.Time) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.now = now
}

// Objects returns the schema of every object, in a stable order.
func (db *DB) Objects() []ObjectSchema {
	out := make([]ObjectSchema, 0, len(db.objects))
	for _, o := range db.objects {
		out = append(out, copySchema(o.schema))
	}
	return out
}

// Describe returns the schema of one object, matched case-insensitively.
// An unknown object is *Error{404, NOT_FOUND, "The requested resource does
// not exist"}.
func (db *DB) Describe(object string) (ObjectSchema, error) {
	t := db.table(object)
	if t == nil {
		return ObjectSchema{}, notFound()
	}
	return copySchema(t.obj.schema), nil
}

func copySchema(s ObjectSchema) ObjectSchema {
	fields := make([]FieldSchema, len(s.Fields))
	for i, f := range s.Fields {
		f.ReferenceTo = append([]string(nil), f.ReferenceTo...)
		fields[i] = f
	}
	s.Fields = fields
	return s
}

// table is safe without the lock: the object map never changes after New.
func (db *DB) table(name string) *table { return db.byName[strings.ToLower(name)] }

// Count returns the number of live (not deleted) records of an object; 0
// for an unknown object.
func (db *DB) Count(object string) int {
	t := db.table(object)
	if t == nil {
		return 0
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	n := 0
	for _, r := range t.rows {
		if !r.deleted {
			n++
		}
	}
	return n
}

// Get returns one live record with the given fields (nil means every field,
// in describe order). The id may have 15 or 18 characters. Errors: unknown
// object or missing/deleted record → 404 NOT_FOUND "The requested resource
// does not exist"; an id that is not an ID of this object → 404 NOT_FOUND
// "Provided external ID field does not exist or is not accessible: <id>"
// (Salesforce reads such a path segment as an external ID); an unknown field
// → 400 INVALID_FIELD.
func (db *DB) Get(object, id string, fields []string, apiVersion string) (*Record, error) {
	t := db.table(object)
	if t == nil {
		return nil, notFound()
	}
	canon, ok := normalizeID(id)
	if !ok || canon[:3] != t.obj.schema.KeyPrefix {
		return nil, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msgBadExternalID + id}
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	r := t.byID[canon]
	if r == nil || r.deleted {
		return nil, notFound()
	}
	var cols []*column
	if fields == nil {
		for i := range t.obj.schema.Fields {
			f := &t.obj.schema.Fields[i]
			cols = append(cols, &column{field: f, last: f.Name, names: []string{f.Name}})
		}
	} else {
		rs := &resolver{db: db}
		for _, name := range fields {
			c, err := rs.column(t.obj, fieldRef(name))
			if err != nil {
				return nil, err
			}
			cols = append(cols, c)
		}
	}
	return db.buildRecord(t.obj, r, cols, apiVersion), nil
}

// Delete soft-deletes a record: it sets IsDeleted, so Query hides it and
// Query with IncludeDeleted (queryAll) shows it. Errors: unknown object,
// bad or unknown id → 404 NOT_FOUND; already deleted → 404
// ENTITY_IS_DELETED "entity is deleted".
func (db *DB) Delete(object, id string) error {
	t := db.table(object)
	if t == nil {
		return notFound()
	}
	canon, ok := normalizeID(id)
	if !ok {
		return notFound()
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r := t.byID[canon]
	if r == nil {
		return notFound()
	}
	if r.deleted {
		return &Error{Status: http.StatusNotFound, Code: CodeEntityIsDeleted, Message: "entity is deleted"}
	}
	r.deleted = true
	r.vals["IsDeleted"] = true
	now := db.now().UTC()
	r.vals["LastModifiedDate"] = now
	r.vals["SystemModstamp"] = now
	return nil
}
