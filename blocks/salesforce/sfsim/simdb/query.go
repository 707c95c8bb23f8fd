package simdb

import (
	"sort"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/soql"
)

// QueryOptions tunes [DB.Query].
type QueryOptions struct {
	IncludeDeleted bool   // queryAll: include soft-deleted records
	APIVersion     string // used in attributes.url; defaults to "66.0"
}

// QueryResult is a full query result; the HTTP side pages it. For SELECT
// COUNT() TotalSize is the count and Records is empty.
type QueryResult struct {
	TotalSize int
	Records   []*Record
}

// maxOffset is Salesforce's OFFSET ceiling.
const maxOffset = 2000

// Query runs a SOQL statement (see package soql for the supported subset).
// Syntax errors are 400 MALFORMED_QUERY, unknown objects 400 INVALID_TYPE,
// unknown fields or literals of the wrong type 400 INVALID_FIELD, malformed
// ID literals 400 INVALID_QUERY_FILTER_OPERATOR, OFFSET above 2000 400
// NUMBER_OUTSIDE_VALID_RANGE, a WHERE condition on a field that is not
// filterable (a long text area) 400 INVALID_FIELD "field 'Description' can
// not be filtered in a query call", ORDER BY such a field 400
// MALFORMED_QUERY "field 'Description' can not be sorted in a query call";
// all positioned messages use Salesforce's "ERROR at Row:R:Column:C" form.
// Text comparisons ignore case except on a unique case-sensitive field
// ([FieldSchema.CaseSensitive]).
func (db *DB) Query(stmt string, opts QueryOptions) (*QueryResult, error) {
	q, err := soql.Parse(stmt)
	if err != nil {
		return nil, fromSOQL(err)
	}
	rs := &resolver{db: db, stmt: stmt, code: CodeMalformedQuery}
	t, err := rs.object(q.Object, q.ObjectPos)
	if err != nil {
		return nil, err
	}
	var cols []*column
	seen := map[string]bool{}
	for _, f := range q.Fields {
		c, err := rs.column(t.obj, f)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(strings.Join(c.names, "."))
		if seen[key] {
			return nil, rs.err(CodeInvalidField, f.Pos, "duplicate field selected: "+f.String())
		}
		seen[key] = true
		cols = append(cols, c)
	}
	if q.Offset > maxOffset {
		return nil, badRequest(CodeNumberOutsideValidRange, "Maximum SOQL offset allowed is 2000")
	}

	db.mu.RLock()
	defer db.mu.RUnlock()
	rows, err := db.selectRows(rs, t, q.Where, q.OrderBy, opts.IncludeDeleted)
	if err != nil {
		return nil, err
	}
	rows = window(rows, q.Offset, q.Limit, q.HasLimit)
	if q.Count {
		return &QueryResult{TotalSize: len(rows), Records: []*Record{}}, nil
	}
	out := make([]*Record, len(rows))
	for i, r := range rows {
		out[i] = db.buildRecord(t.obj, r, cols, opts.APIVersion)
	}
	return &QueryResult{TotalSize: len(out), Records: out}, nil
}

func window(rows []*row, offset, limit int, hasLimit bool) []*row {
	if offset >= len(rows) {
		return nil
	}
	rows = rows[offset:]
	if hasLimit && limit < len(rows) {
		rows = rows[:limit]
	}
	return rows
}

// selectRows filters and sorts the rows of t. db.mu must be held.
func (db *DB) selectRows(rs *resolver, t *table, where soql.Expr, order []soql.OrderItem, includeDeleted bool) ([]*row, error) {
	var pred func(*row) bool
	if where != nil {
		p, err := db.compile(rs, t.obj, where)
		if err != nil {
			return nil, err
		}
		pred = p
	}
	var keys []sortKey
	for _, o := range order {
		c, err := rs.column(t.obj, o.Field)
		if err != nil {
			return nil, err
		}
		if c.field != nil && !c.field.Sortable {
			return nil, rs.err(CodeMalformedQuery, o.Field.Pos, notSortable(c.field.Name))
		}
		keys = append(keys, sortKey{col: c, desc: o.Desc, nullsLast: o.NullsLast})
	}
	out := make([]*row, 0, len(t.rows))
	for _, r := range t.rows {
		if r.deleted && !includeDeleted {
			continue
		}
		if pred != nil && !pred(r) {
			continue
		}
		out = append(out, r)
	}
	if len(keys) > 0 {
		db.sortRows(out, keys)
	}
	return out, nil
}

type sortKey struct {
	col       *column
	desc      bool
	nullsLast bool
}

// sortRows sorts stably by the keys; values are extracted (and text
// folded) once per row so lookups are not repeated O(n log n) times.
func (db *DB) sortRows(rows []*row, keys []sortKey) {
	type keyed struct {
		r  *row
		vs []any
	}
	items := make([]keyed, len(rows))
	flat := make([]any, len(rows)*len(keys))
	for i, r := range rows {
		vs := flat[i*len(keys) : (i+1)*len(keys)]
		for j, k := range keys {
			v := db.value(r, k.col)
			if str, ok := v.(string); ok && k.col.field.Type != "id" && k.col.field.Type != "reference" {
				v = strings.ToLower(str)
			}
			vs[j] = v
		}
		items[i] = keyed{r: r, vs: vs}
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i].vs, items[j].vs
		for k, key := range keys {
			va, vb := a[k], b[k]
			switch {
			case va == nil && vb == nil:
				continue
			case va == nil:
				return !key.nullsLast
			case vb == nil:
				return key.nullsLast
			}
			c := compareRaw(va, vb)
			if c == 0 {
				continue
			}
			if key.desc {
				return c > 0
			}
			return c < 0
		}
		return false
	})
	for i := range items {
		rows[i] = items[i].r
	}
}

// compareRaw orders two non-nil stored values, strings byte-wise.
func compareRaw(a, b any) int {
	if x, ok := a.(string); ok {
		y, _ := b.(string)
		return strings.Compare(x, y)
	}
	return compareValues(a, b)
}

// compareValues orders two non-nil stored values of the same field; text
// compares case-insensitively as Salesforce does.
func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return strings.Compare(strings.ToLower(x), strings.ToLower(y))
	case float64:
		y, _ := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case time.Time:
		y, _ := b.(time.Time)
		return x.Compare(y)
	}
	return 0
}
