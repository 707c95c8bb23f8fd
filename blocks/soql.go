package blocks

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// maxPathSegments bounds a relationship path: SOQL follows at most five
// child-to-parent relationships.
const maxPathSegments = 6

// validPath reports whether s is a field name or a relationship path such
// as Account.Owner.Name, each segment a valid API name.
func validPath(s string) bool {
	if s == "" {
		return false
	}
	n := 0
	for seg := range strings.SplitSeq(s, ".") {
		n++
		if n > maxPathSegments || !salesforce.ValidAPIName(seg) {
			return false
		}
	}
	return true
}

// buildSOQL builds the statement of a structured search:
// SELECT fields FROM object [WHERE c1 AND c2 ...] [ORDER BY ...] [LIMIT n].
func buildSOQL(r *sfblocks.SearchRequest, vars map[string]variable) (string, error) {
	if !salesforce.ValidAPIName(r.Object) {
		return "", invalidf("object %s is not a valid API name (use the API name, such as Contact or My_Object__c)", quoteName(r.Object))
	}
	if len(r.Fields) == 0 {
		return "", invalidf("the structured search needs fields: the fields to return, such as [\"Id\", \"Name\"]")
	}
	if len(r.Fields) > MaxFields {
		return "", invalidf("fields has %d entries; the limit is %d", len(r.Fields), MaxFields)
	}
	if len(r.Where) > MaxConditions {
		return "", invalidf("where has %d conditions; the limit is %d", len(r.Where), MaxConditions)
	}
	if len(r.OrderBy) > MaxFields {
		return "", invalidf("order_by has %d items; the limit is %d", len(r.OrderBy), MaxFields)
	}
	if r.Limit < 0 || r.Limit > MaxRecordsLimit {
		return "", invalidf("limit must be between 1 and %d", MaxRecordsLimit)
	}
	var b strings.Builder
	b.Grow(64 + 24*len(r.Fields) + 48*len(r.Where))
	b.WriteString("SELECT ")
	for i, f := range r.Fields {
		if !validPath(f) {
			return "", invalidf("fields[%d] %s is not a valid field name or relationship path (such as Name or Account.Name)", i, quoteName(f))
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f)
	}
	b.WriteString(" FROM ")
	b.WriteString(r.Object)
	for i := range r.Where {
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		if err := writeCondition(&b, &r.Where[i], i, vars); err != nil {
			return "", err
		}
	}
	for i, o := range r.OrderBy {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		if !validPath(o.Field) {
			return "", invalidf("order_by[%d] field %s is not a valid field name or relationship path", i, quoteName(o.Field))
		}
		b.WriteString(o.Field)
		switch strings.ToLower(o.Direction) {
		case "", "asc":
		case "desc":
			b.WriteString(" DESC")
		default:
			return "", invalidf("order_by[%d] direction must be asc or desc", i)
		}
		switch strings.ToLower(o.Nulls) {
		case "":
		case "first":
			b.WriteString(" NULLS FIRST")
		case "last":
			b.WriteString(" NULLS LAST")
		default:
			return "", invalidf("order_by[%d] nulls must be first or last", i)
		}
	}
	if r.Limit > 0 {
		b.WriteString(" LIMIT ")
		b.WriteString(strconv.Itoa(r.Limit))
	}
	return b.String(), nil
}

func writeCondition(b *strings.Builder, c *sfblocks.Condition, i int, vars map[string]variable) error {
	where := "where[" + strconv.Itoa(i) + "]"
	if !validPath(c.Field) {
		return invalidf("%s field %s is not a valid field name or relationship path (such as Phone or Account.Name)", where, quoteName(c.Field))
	}
	op := c.Op
	switch {
	case op == "=" || op == "!=" || op == "<" || op == ">" || op == "<=" || op == ">=":
	case strings.EqualFold(op, "like"):
		op = "LIKE"
	case strings.EqualFold(op, "in"):
		op = "IN"
	case strings.EqualFold(op, "empty"), strings.EqualFold(op, "not_empty"):
		if c.Value != nil {
			return invalidf("%s: op %s takes no value; remove value", where, strings.ToLower(op))
		}
		b.WriteString(c.Field)
		if strings.EqualFold(op, "empty") {
			b.WriteString(" = null")
		} else {
			b.WriteString(" != null")
		}
		return nil
	default:
		return invalidf("%s op %s is not one of = != < > <= >= LIKE IN empty not_empty", where, quoteName(c.Op))
	}
	switch c.Type {
	case "", "string", "date", "datetime":
	default:
		return invalidf("%s type must be string, date or datetime", where)
	}
	if c.Value == nil {
		return invalidf("%s needs a value (to test for null, use op empty or not_empty)", where)
	}
	b.WriteString(c.Field)
	b.WriteByte(' ')
	b.WriteString(op)
	b.WriteByte(' ')
	if op == "IN" {
		items, ok := c.Value.([]any)
		if !ok || len(items) == 0 {
			return invalidf("%s: IN needs a non-empty array value", where)
		}
		if len(items) > MaxInValues {
			return invalidf("%s: IN has %d values; the limit is %d", where, len(items), MaxInValues)
		}
		b.WriteByte('(')
		for j, it := range items {
			if j > 0 {
				b.WriteString(", ")
			}
			if err := writeValue(b, it, c.Type, false, where+".value["+strconv.Itoa(j)+"]", vars); err != nil {
				return err
			}
		}
		b.WriteByte(')')
		return nil
	}
	if op == "LIKE" {
		if _, ok := c.Value.(string); !ok {
			return invalidf("%s: LIKE needs a string value", where)
		}
	}
	return writeValue(b, c.Value, c.Type, op == "LIKE", where+".value", vars)
}

// writeValue renders one condition value as a SOQL literal. like is set for
// LIKE patterns, whose % and _ stay wildcards (see [escapeLikePattern]).
func writeValue(b *strings.Builder, v any, typ string, like bool, where string, vars map[string]variable) error {
	if s, ok := v.(string); ok && like && typ != "date" && typ != "datetime" {
		return writeLikeValue(b, s, where, vars)
	}
	v, err := resolveValue(v, vars, where)
	if err != nil {
		return err
	}
	switch t := v.(type) {
	case string:
		switch typ {
		case "date":
			if !isDate(t) {
				return invalidf("%s must be a date YYYY-MM-DD (type date)", where)
			}
			b.WriteString(t)
		case "datetime":
			if !isDateTime(t) {
				return invalidf("%s must be a datetime YYYY-MM-DDThh:mm:ssZ or with a +hh:mm offset (type datetime)", where)
			}
			b.WriteString(t)
		default:
			b.WriteByte('\'')
			if like {
				b.WriteString(escapeLikePattern(t))
			} else {
				b.WriteString(salesforce.EscapeSOQLString(t))
			}
			b.WriteByte('\'')
		}
	case json.Number:
		if typ == "date" || typ == "datetime" || !isSOQLNumber(t.String()) {
			return invalidf("%s must be a plain number such as 42 or -1.5 (no exponent)", where)
		}
		b.WriteString(t.String())
	case bool:
		if typ == "date" || typ == "datetime" {
			return invalidf("%s must be a string for type %s", where, typ)
		}
		b.WriteString(strconv.FormatBool(t))
	default:
		return invalidf("%s must be a string, number or boolean", where)
	}
	return nil
}

// escapeLikePattern escapes a caller's LIKE pattern like EscapeSOQLString,
// except for three escapes the caller may write: \% and \_ match a literal
// percent sign or underscore, and \\ a literal backslash. Any other
// backslash is a literal backslash.
func escapeLikePattern(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return salesforce.EscapeSOQLString(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for {
		i := strings.IndexByte(s, '\\')
		if i < 0 || i+1 >= len(s) {
			b.WriteString(salesforce.EscapeSOQLString(s))
			return b.String()
		}
		b.WriteString(salesforce.EscapeSOQLString(s[:i]))
		switch s[i+1] {
		case '%', '_':
			b.WriteString(s[i : i+2])
			s = s[i+2:]
		case '\\':
			b.WriteString(`\\`)
			s = s[i+2:]
		default:
			b.WriteString(`\\`)
			s = s[i+1:]
		}
	}
}

// writeLikeValue writes a quoted LIKE pattern in which the caller's text is
// a pattern ([escapeLikePattern]) and each variable's text matches
// literally ([salesforce.EscapeSOQLLike]).
func writeLikeValue(b *strings.Builder, s, where string, vars map[string]variable) error {
	b.WriteByte('\'')
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(escapeLikePattern(s))
			break
		}
		name, n, err := placeholderAt(s, i, where)
		if err != nil {
			return err
		}
		b.WriteString(escapeLikePattern(s[:i]))
		switch {
		case n == 0:
			b.WriteByte('$')
			n = 1
		case name == "":
			b.WriteString("$(")
		default:
			v, err := lookupVar(vars, name, where)
			if err != nil {
				return err
			}
			b.WriteString(salesforce.EscapeSOQLLike(v.text))
		}
		s = s[i+n:]
	}
	b.WriteByte('\'')
	return nil
}
