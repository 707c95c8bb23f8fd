package simdb

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// Record is one sObject as Salesforce serialises it: "attributes" first
// ({"type","url"}), then the fields in the order they were selected, with
// relationship fields nested as records (or null when the lookup is empty).
// A Record is immutable once returned.
type Record struct {
	typ  string
	url  string
	keys []string
	vals []any // string, bool, float64, nil or *Record
}

// Type is the sObject type, e.g. "Contact".
func (r *Record) Type() string { return r.typ }

// URL is the record's REST URL, e.g. /services/data/v66.0/sobjects/Contact/003....
func (r *Record) URL() string { return r.url }

// Fields lists the serialised field names in order (relationship names for
// nested records).
func (r *Record) Fields() []string { return append([]string(nil), r.keys...) }

// Get returns the value of a field, matching its name case-insensitively.
// Values are string, bool, float64, nil or *Record (a nested parent).
// Dates and datetimes are the strings Salesforce sends ("2024-01-02",
// "2024-01-02T03:04:05.000+0000"). ok is false when the field was not
// selected.
func (r *Record) Get(field string) (any, bool) {
	for i, k := range r.keys {
		if strings.EqualFold(k, field) {
			return r.vals[i], true
		}
	}
	return nil, false
}

func (r *Record) set(key string, v any) {
	r.keys = append(r.keys, key)
	r.vals = append(r.vals, v)
}

// MarshalJSON writes attributes first and the fields in selection order.
func (r *Record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"attributes":{"type":`)
	if err := writeJSON(&b, r.typ); err != nil {
		return nil, err
	}
	b.WriteString(`,"url":`)
	if err := writeJSON(&b, r.url); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	for i, k := range r.keys {
		b.WriteByte(',')
		if err := writeJSON(&b, k); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := writeJSON(&b, r.vals[i]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	if rec, ok := v.(*Record); ok {
		if rec == nil {
			b.WriteString("null")
			return nil
		}
		out, err := rec.MarshalJSON()
		if err != nil {
			return err
		}
		b.Write(out)
		return nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(out)
	return nil
}

const (
	dateLayout     = "2006-01-02"
	dateTimeLayout = "2006-01-02T15:04:05.000-0700"
	defaultVersion = "66.0"
)

// wireValue converts a stored value to what Salesforce puts on the wire.
func wireValue(f *FieldSchema, v any) any {
	t, ok := v.(time.Time)
	if !ok {
		return v
	}
	if f.Type == "date" {
		return t.UTC().Format(dateLayout)
	}
	return strings.Replace(t.UTC().Format(dateTimeLayout), "-0000", "+0000", 1)
}

func recordURL(version, object, id string) string {
	if version == "" {
		version = defaultVersion
	}
	return "/services/data/v" + version + "/sobjects/" + object + "/" + id
}
