package simdb

import (
	"strings"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/soql"
)

// ParamSearch is a parameterized search (GET/POST /parameterizedSearch).
type ParamSearch struct {
	Q            string         // the search term, SOSL term syntax; required
	In           string         // ALL (default), NAME, EMAIL or PHONE
	Fields       []string       // fields returned for objects without their own list; default Id
	SObjects     []ParamSObject // objects to search; default all searchable objects
	OverallLimit int            // 0 means Salesforce's default of 2000
}

// ParamSObject is one object of a parameterized search.
type ParamSObject struct {
	Name   string
	Fields []string // overrides ParamSearch.Fields
	Where  string   // SOQL condition, without the WHERE keyword
	Limit  int      // 0 means no per-object limit
}

// defaultSearchLimit is Salesforce's maximum number of search results.
const defaultSearchLimit = 2000

// spec is one compiled RETURNING object.
type searchSpec struct {
	t        *table
	cols     []*column
	where    soql.Expr
	order    []soql.OrderItem
	limit    int
	hasLimit bool
	rs       *resolver
}

// Search runs a SOSL statement:
//
//	FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS]
//	[RETURNING Obj[(fields [WHERE ...] [ORDER BY ...] [LIMIT n])], ...] [LIMIT n]
//
// and returns the matching records, object by object in RETURNING order
// (all searchable objects, Id only, without RETURNING). Terms match
// case-insensitively as substrings of the chosen field group; phone fields
// also match on digits only. Errors: syntax → 400 MALFORMED_SEARCH; unknown
// object → 400 INVALID_TYPE; unknown field → 400 INVALID_FIELD.
func (db *DB) Search(sosl string, apiVersion string) ([]*Record, error) {
	s, err := soql.ParseSearch(sosl)
	if err != nil {
		return nil, fromSOQL(err)
	}
	rs := &resolver{db: db, stmt: sosl, code: CodeMalformedSearch}
	var specs []*searchSpec
	if len(s.Returning) == 0 {
		for _, o := range db.objects {
			specs = append(specs, &searchSpec{t: db.table(o.schema.Name), cols: []*column{idColumn(o)}, rs: rs})
		}
	}
	for _, r := range s.Returning {
		t, err := rs.object(r.Object, r.Pos)
		if err != nil {
			return nil, err
		}
		sp := &searchSpec{t: t, where: r.Where, order: r.OrderBy, limit: r.Limit, hasLimit: r.HasLimit, rs: rs}
		for _, f := range r.Fields {
			c, err := rs.column(t.obj, f)
			if err != nil {
				return nil, err
			}
			sp.cols = append(sp.cols, c)
		}
		if len(sp.cols) == 0 {
			sp.cols = []*column{idColumn(t.obj)}
		}
		specs = append(specs, sp)
	}
	limit := defaultSearchLimit
	if s.HasLimit && s.Limit < limit {
		limit = s.Limit
	}
	return db.runSearch(s.Term, s.In, specs, limit, apiVersion)
}

// ParameterizedSearch runs a parameterized search with the same matching as
// [DB.Search]. Errors: empty Q → 400 MALFORMED_SEARCH; bad In → 400
// INVALID_SEARCH; unknown object → 400 INVALID_TYPE; unknown field or bad
// Where → 400 INVALID_FIELD / MALFORMED_QUERY (positions refer to the
// statement "SELECT Id FROM <Name> WHERE <Where>").
func (db *DB) ParameterizedSearch(p ParamSearch, apiVersion string) ([]*Record, error) {
	term, err := soql.ParseSearchTerm(p.Q)
	if err != nil {
		return nil, fromSOQL(err)
	}
	in := strings.ToUpper(p.In)
	switch in {
	case "":
		in = "ALL"
	case "ALL", "NAME", "EMAIL", "PHONE":
	default:
		return nil, badRequest("INVALID_SEARCH", "invalid value for parameter 'in': "+p.In)
	}
	objs := p.SObjects
	if len(objs) == 0 {
		for _, o := range db.objects {
			objs = append(objs, ParamSObject{Name: o.schema.Name})
		}
	}
	plain := &resolver{db: db}
	var specs []*searchSpec
	for _, so := range objs {
		t := db.table(so.Name)
		if t == nil {
			return nil, badRequest(CodeInvalidType, unsupportedType(so.Name))
		}
		sp := &searchSpec{t: t, limit: so.Limit, hasLimit: so.Limit > 0, rs: plain}
		fields := so.Fields
		if len(fields) == 0 {
			fields = p.Fields
		}
		for _, f := range fields {
			c, err := plain.column(t.obj, fieldRef(f))
			if err != nil {
				return nil, err
			}
			sp.cols = append(sp.cols, c)
		}
		if len(sp.cols) == 0 {
			sp.cols = []*column{idColumn(t.obj)}
		}
		if so.Where != "" {
			stmt := "SELECT Id FROM " + t.obj.schema.Name + " WHERE " + so.Where
			q, err := soql.Parse(stmt)
			if err != nil {
				return nil, fromSOQL(err)
			}
			sp.where = q.Where
			sp.rs = &resolver{db: db, stmt: stmt, code: CodeMalformedQuery}
		}
		specs = append(specs, sp)
	}
	limit := defaultSearchLimit
	if p.OverallLimit > 0 && p.OverallLimit < limit {
		limit = p.OverallLimit
	}
	return db.runSearch(term, in, specs, limit, apiVersion)
}

func idColumn(o *object) *column {
	f := o.field("Id")
	return &column{field: f, last: f.Name, names: []string{f.Name}}
}

func (db *DB) runSearch(term soql.SearchExpr, in string, specs []*searchSpec, limit int, version string) ([]*Record, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := []*Record{}
	for _, sp := range specs {
		rows, err := db.selectRows(sp.rs, sp.t, sp.where, sp.order, false)
		if err != nil {
			return nil, err
		}
		texts, phones := searchFields(sp.t.obj, in)
		n := 0
		for _, r := range rows {
			if len(out) >= limit || (sp.hasLimit && n >= sp.limit) {
				break
			}
			if !db.matches(r, term, texts, phones) {
				continue
			}
			out = append(out, db.buildRecord(sp.t.obj, r, sp.cols, version))
			n++
		}
	}
	return out, nil
}

// searchFields lists the text fields and phone fields a field group
// searches.
func searchFields(o *object, in string) (texts, phones []string) {
	for _, f := range o.schema.Fields {
		switch in {
		case "NAME":
			for _, n := range o.nameGroup {
				if n == f.Name {
					texts = append(texts, f.Name)
				}
			}
		case "EMAIL":
			if f.Type == "email" {
				texts = append(texts, f.Name)
			}
		case "PHONE":
			if f.Type == "phone" {
				phones = append(phones, f.Name)
			}
		default:
			if isText(f.Type) && f.Type != "id" && f.Type != "reference" {
				texts = append(texts, f.Name)
			}
			if f.Type == "phone" {
				phones = append(phones, f.Name)
			}
		}
	}
	return texts, phones
}

func (db *DB) matches(r *row, term soql.SearchExpr, texts, phones []string) bool {
	tv := make([]string, 0, len(texts))
	for _, name := range texts {
		if s, ok := r.vals[name].(string); ok {
			tv = append(tv, s)
		}
	}
	pv := make([]string, 0, len(phones))
	for _, name := range phones {
		if s, ok := r.vals[name].(string); ok {
			pv = append(pv, s)
		}
	}
	return soql.EvalSearch(term, func(t *soql.SearchTerm) bool {
		return (len(tv) > 0 && t.MatchText(tv)) || (len(pv) > 0 && t.MatchPhone(pv))
	})
}
