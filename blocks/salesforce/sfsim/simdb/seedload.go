package simdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// seedOrder loads parents before children so lookups resolve.
var seedOrder = []string{"Account", "Contact", "Lead", "Case", "Task"}

// LoadSeed loads dir/<Object>.json from fsys for each object, in dependency
// order (Account, Contact, Lead, Case, Task); a missing file is skipped.
// Each file is a JSON array of records keyed by field name. Unlike
// [DB.Create], a seed record may carry Id and system fields (CreatedDate,
// CaseNumber, ...); every value is otherwise validated as Create does, and
// the first failure is returned wrapped with the file and record index.
func (db *DB) LoadSeed(fsys fs.FS, dir string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, name := range seedOrder {
		file := path.Join(dir, name+".json")
		data, err := fs.ReadFile(fsys, file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("simdb: read seed %s: %w", file, err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var recs []map[string]any
		if err := dec.Decode(&recs); err != nil {
			return fmt.Errorf("simdb: decode seed %s: %w", file, err)
		}
		t := db.table(name)
		for i, body := range recs {
			if err := db.loadOne(t, body); err != nil {
				return fmt.Errorf("simdb: seed %s record %d: %w", file, i, err)
			}
		}
	}
	return nil
}

func (db *DB) loadOne(t *table, body map[string]any) error {
	vals := make(map[string]any, len(body))
	for k, v := range body {
		f := t.obj.field(k)
		if f == nil {
			return badRequest(CodeInvalidField, "No such column '"+k+"' on sobject of type "+t.obj.schema.Name)
		}
		if f.Name == "Id" {
			s, _ := v.(string)
			id, ok := normalizeID(s)
			if !ok || id[:3] != t.obj.schema.KeyPrefix {
				return badRequest(CodeMalformedID, "Record ID: id value of incorrect type: "+s)
			}
			if t.byID[id] != nil {
				return badRequest(CodeDuplicateValue, "duplicate value found: Id duplicates value on record with id: "+id)
			}
			vals["Id"] = id
			continue
		}
		if f.Name == "CaseNumber" || strings.HasSuffix(f.Name, "ById") || f.Name == "OwnerId" {
			vals[f.Name] = fmt.Sprint(v)
			continue
		}
		cv, err := db.coerce(f, v)
		if err != nil {
			return err
		}
		vals[f.Name] = cv
	}
	_, err := db.insert(t, vals, true)
	return err
}
