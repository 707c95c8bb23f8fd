package simdb

import (
	"strings"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/soql"
)

// compile turns a WHERE condition into a predicate, resolving fields and
// checking each literal against its field's type first, so evaluation
// cannot fail. db.mu must be held while the predicate runs.
func (db *DB) compile(rs *resolver, obj *object, e soql.Expr) (func(*row) bool, error) {
	switch n := e.(type) {
	case *soql.And:
		preds, err := db.compileAll(rs, obj, n.Terms)
		if err != nil {
			return nil, err
		}
		return func(r *row) bool {
			for _, p := range preds {
				if !p(r) {
					return false
				}
			}
			return true
		}, nil
	case *soql.Or:
		preds, err := db.compileAll(rs, obj, n.Terms)
		if err != nil {
			return nil, err
		}
		return func(r *row) bool {
			for _, p := range preds {
				if p(r) {
					return true
				}
			}
			return false
		}, nil
	case *soql.Not:
		p, err := db.compile(rs, obj, n.X)
		if err != nil {
			return nil, err
		}
		return func(r *row) bool { return !p(r) }, nil
	case *soql.Comparison:
		return db.compileComparison(rs, obj, n)
	}
	return func(*row) bool { return false }, nil
}

func (db *DB) compileAll(rs *resolver, obj *object, terms []soql.Expr) ([]func(*row) bool, error) {
	preds := make([]func(*row) bool, len(terms))
	for i, t := range terms {
		p, err := db.compile(rs, obj, t)
		if err != nil {
			return nil, err
		}
		preds[i] = p
	}
	return preds, nil
}

// operand is a literal converted to the field's stored form.
type operand struct {
	null       bool
	v          any // string, float64, bool, time.Time
	rng        bool
	start, end time.Time // for relative date literals
}

func typeWord(typ string) (string, bool) {
	switch typ {
	case "boolean":
		return "boolean", false
	case "int":
		return "integer", false
	case "double", "currency":
		return "double", false
	case "date":
		return "date", false
	case "datetime":
		return "dateTime", false
	}
	return "string", true
}

func (db *DB) operand(rs *resolver, f *FieldSchema, lit soql.Literal) (operand, error) {
	if lit.Kind == soql.KindNull {
		return operand{null: true}, nil
	}
	wrongType := func() error {
		word, quoted := typeWord(f.Type)
		how := "should not be enclosed in quotes"
		if quoted {
			how = "should be enclosed in quotes"
		}
		return rs.err(CodeInvalidField, lit.Pos, "value of filter criterion for field '"+f.Name+"' must be of type "+word+" and "+how)
	}
	switch {
	case f.Type == "id" || f.Type == "reference":
		if lit.Kind != soql.KindString {
			return operand{}, wrongType()
		}
		if lit.Str == "" {
			return operand{null: true}, nil
		}
		id, ok := normalizeID(lit.Str)
		if !ok {
			return operand{}, rs.err(CodeInvalidFilterOperator, lit.Pos, "invalid ID field: "+lit.Str)
		}
		return operand{v: id}, nil
	case isText(f.Type):
		if lit.Kind != soql.KindString {
			return operand{}, wrongType()
		}
		return operand{v: lit.Str}, nil
	case f.Type == "boolean":
		if lit.Kind != soql.KindBool {
			return operand{}, wrongType()
		}
		return operand{v: lit.Bool}, nil
	case isNumber(f.Type):
		if lit.Kind != soql.KindNumber {
			return operand{}, wrongType()
		}
		return operand{v: lit.Num}, nil
	case f.Type == "date" || f.Type == "datetime":
		switch {
		case lit.Kind == soql.KindDateFunc:
			s, e, _ := lit.DateRange(db.now())
			return operand{rng: true, start: s, end: e}, nil
		case lit.Kind == soql.KindDate && f.Type == "date", lit.Kind == soql.KindDateTime && f.Type == "datetime":
			return operand{v: lit.Time}, nil
		}
		return operand{}, wrongType()
	}
	return operand{}, wrongType()
}

func (db *DB) compileComparison(rs *resolver, obj *object, c *soql.Comparison) (func(*row) bool, error) {
	col, err := rs.column(obj, c.Field)
	if err != nil {
		return nil, err
	}
	f := col.field
	if !f.Filterable {
		// Checked before the literal, as Salesforce does: the field itself
		// is what cannot be filtered, whatever it is compared with.
		return nil, rs.err(CodeInvalidField, c.Field.Pos, notFilterable(f.Name))
	}
	get := func(r *row) any { return db.value(r, col) }
	textual := isText(f.Type) && f.Type != "id" && f.Type != "reference"
	// Text compares ignoring case except on a unique case-sensitive field
	// (SOQL and SOSL Reference, "Comparison Operators").
	caseFold := textual && !(f.Unique && f.CaseSensitive)

	switch c.Op {
	case soql.OpLike:
		if !textual {
			return nil, rs.err(CodeInvalidField, c.OpPos, "invalid operator on "+f.Type+" field")
		}
		pat := c.Pattern
		match := pat.Match
		if !caseFold {
			match = pat.MatchCase
		}
		return func(r *row) bool {
			s, ok := get(r).(string)
			return ok && match(s)
		}, nil
	case soql.OpIn, soql.OpNotIn:
		ops := make([]operand, len(c.Values))
		for i, lit := range c.Values {
			op, err := db.operand(rs, f, lit)
			if err != nil {
				return nil, err
			}
			ops[i] = op
		}
		not := c.Op == soql.OpNotIn
		return func(r *row) bool {
			v := get(r)
			for _, op := range ops {
				if matchOp(soql.OpEq, v, op, caseFold) {
					return !not
				}
			}
			return not
		}, nil
	}
	op, err := db.operand(rs, f, c.Value)
	if err != nil {
		return nil, err
	}
	if op.null && c.Op != soql.OpEq && c.Op != soql.OpNe {
		return nil, rs.err(CodeMalformedQuery, c.OpPos, "unexpected token: '"+c.Op.String()+"'")
	}
	cmp := c.Op
	return func(r *row) bool { return matchOp(cmp, get(r), op, caseFold) }, nil
}

// matchOp applies one comparison to a stored value. A null value satisfies
// only "= null" and "!= <value>" (Salesforce includes nulls in !=).
func matchOp(op soql.Op, v any, o operand, caseFold bool) bool {
	if o.null {
		if op == soql.OpEq {
			return v == nil
		}
		return v != nil
	}
	if v == nil {
		return op == soql.OpNe
	}
	var c int
	if o.rng {
		t, ok := v.(time.Time)
		if !ok {
			return false
		}
		in := !t.Before(o.start) && t.Before(o.end)
		switch op {
		case soql.OpEq:
			return in
		case soql.OpNe:
			return !in
		case soql.OpLt:
			return t.Before(o.start)
		case soql.OpLe:
			return t.Before(o.end)
		case soql.OpGt:
			return !t.Before(o.end)
		case soql.OpGe:
			return !t.Before(o.start)
		}
		return false
	}
	if s, ok := v.(string); ok && caseFold {
		os, _ := o.v.(string)
		if op == soql.OpEq || op == soql.OpNe {
			return strings.EqualFold(s, os) == (op == soql.OpEq)
		}
		c = strings.Compare(strings.ToLower(s), strings.ToLower(os))
	} else if s, ok := v.(string); ok {
		os, _ := o.v.(string)
		c = strings.Compare(s, os)
	} else {
		c = compareValues(v, o.v)
	}
	switch op {
	case soql.OpEq:
		return c == 0
	case soql.OpNe:
		return c != 0
	case soql.OpLt:
		return c < 0
	case soql.OpLe:
		return c <= 0
	case soql.OpGt:
		return c > 0
	case soql.OpGe:
		return c >= 0
	}
	return false
}

// notFilterable is Salesforce's message for a WHERE condition on a field
// whose describe says filterable false (a long text area such as
// Description): errorCode INVALID_FIELD, positioned at the field.
func notFilterable(field string) string {
	return "field '" + field + "' can not be filtered in a query call"
}

// notSortable is the message for ORDER BY on a field whose describe says
// sortable false: errorCode MALFORMED_QUERY, positioned at the field.
func notSortable(field string) string {
	return "field '" + field + "' can not be sorted in a query call"
}
