package simdb

import (
	"strings"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/soql"
)

// column is a resolved (possibly relationship) field path.
type column struct {
	hops  []*FieldSchema // reference fields followed, in order
	field *FieldSchema   // the field read at the end (nil for polymorphic ends, see name)
	last  string         // final field name as resolved (used on polymorphic targets)
	names []string       // serialised names: relationship names, then the field name
	ref   soql.FieldRef
}

// resolver resolves names for one statement; with an empty stmt its errors
// carry no position (Get's field list).
type resolver struct {
	db   *DB
	stmt string
	code string // code for syntax-level errors (MALFORMED_QUERY / MALFORMED_SEARCH)
}

func fieldRef(name string) soql.FieldRef { return soql.FieldRef{Path: strings.Split(name, ".")} }

func (rs *resolver) err(code string, pos soql.Pos, text string) error {
	if rs.stmt == "" {
		return badRequest(code, text)
	}
	return fromSOQL(soql.NewError(code, rs.stmt, pos, text))
}

func noSuchColumn(field, entity string) string {
	return "No such column '" + field + "' on entity '" + entity + "'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
}

func unsupportedType(name string) string {
	return "sObject type '" + name + "' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
}

// object resolves the FROM / RETURNING object.
func (rs *resolver) object(name string, pos soql.Pos) (*table, error) {
	t := rs.db.table(name)
	if t == nil {
		return nil, rs.err(CodeInvalidType, pos, unsupportedType(name))
	}
	return t, nil
}

// column resolves a field path on obj: leading relationship names (one or
// two levels, polymorphic Who/What included) and a final field. An optional
// leading object name ("Contact.Name" on Contact) is accepted as SOQL does.
func (rs *resolver) column(obj *object, ref soql.FieldRef) (*column, error) {
	path := ref.Path
	if len(path) > 1 && strings.EqualFold(path[0], obj.schema.Name) && obj.rels[strings.ToLower(path[0])] == nil {
		path = path[1:]
	}
	c := &column{ref: ref}
	cur := []*object{obj}
	for i, part := range path {
		lastPart := i == len(path)-1
		if lastPart {
			var found *FieldSchema
			for _, o := range cur {
				if f := o.field(part); f != nil {
					found = f
					break
				}
			}
			if found == nil {
				return nil, rs.err(CodeInvalidField, ref.Pos, noSuchColumn(part, cur[0].schema.Name))
			}
			c.field, c.last = found, found.Name
			c.names = append(c.names, found.Name)
			return c, nil
		}
		var hop *FieldSchema
		for _, o := range cur {
			if f := o.rels[strings.ToLower(part)]; f != nil {
				hop = f
				break
			}
		}
		if hop == nil || len(c.hops) >= 2 {
			return nil, rs.err(CodeInvalidField, ref.Pos, "Didn't understand relationship '"+part+"' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.")
		}
		c.hops = append(c.hops, hop)
		c.names = append(c.names, hop.RelationshipName)
		var next []*object
		for _, to := range hop.ReferenceTo {
			if t := rs.db.table(to); t != nil {
				next = append(next, t.obj)
			}
		}
		if len(next) == 0 {
			return nil, rs.err(CodeInvalidField, ref.Pos, "Didn't understand relationship '"+part+"' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.")
		}
		cur = next
	}
	return nil, rs.err(CodeInvalidField, ref.Pos, noSuchColumn("", obj.schema.Name))
}

// follow walks the column's hops from r; nil when a lookup is empty or
// dangling. db.mu must be held.
func (db *DB) follow(r *row, hops []*FieldSchema) (*row, *table) {
	var t *table
	for _, h := range hops {
		id, _ := r.vals[h.Name].(string)
		if id == "" {
			return nil, nil
		}
		t = db.byPrefix[id[:3]]
		if t == nil {
			return nil, nil
		}
		r = t.byID[id]
		if r == nil {
			return nil, nil
		}
	}
	return r, t
}

// value reads the column from r. db.mu must be held.
func (db *DB) value(r *row, c *column) any {
	if len(c.hops) == 0 {
		return r.vals[c.field.Name]
	}
	target, _ := db.follow(r, c.hops)
	if target == nil {
		return nil
	}
	return target.vals[c.last]
}

// buildRecord serialises r with the given columns, nesting relationship
// columns under their relationship name. db.mu must be held.
func (db *DB) buildRecord(obj *object, r *row, cols []*column, version string) *Record {
	rec := &Record{typ: obj.schema.Name, url: recordURL(version, obj.schema.Name, r.id)}
	db.fill(rec, obj, r, cols, 0, version)
	return rec
}

func (db *DB) fill(rec *Record, obj *object, r *row, cols []*column, depth int, version string) {
	done := map[string]bool{}
	for i, c := range cols {
		if len(c.hops) == depth {
			f := obj.field(c.last)
			if f == nil && strings.EqualFold(c.last, "Name") && len(obj.nameGroup) > 0 {
				// Polymorphic lookups (Who, What) read Name through
				// Salesforce's Name object, which is CaseNumber on a Case.
				f = obj.field(obj.nameGroup[0])
				rec.set("Name", wireValue(f, r.vals[f.Name]))
				continue
			}
			if f == nil { // polymorphic target without this field
				rec.set(c.last, nil)
				continue
			}
			if _, dup := rec.Get(f.Name); !dup {
				rec.set(f.Name, wireValue(f, r.vals[f.Name]))
			}
			continue
		}
		rel := c.hops[depth].RelationshipName
		if done[strings.ToLower(rel)] {
			continue
		}
		done[strings.ToLower(rel)] = true
		// Every later column through the same relationship goes into the
		// same nested record, in selection order.
		var group []*column
		for _, c2 := range cols[i:] {
			if len(c2.hops) > depth && strings.EqualFold(c2.hops[depth].RelationshipName, rel) {
				group = append(group, c2)
			}
		}
		id, _ := r.vals[c.hops[depth].Name].(string)
		var child *row
		var ct *table
		if id != "" {
			if ct = db.byPrefix[id[:3]]; ct != nil {
				child = ct.byID[id]
			}
		}
		if child == nil {
			rec.set(rel, nil)
			continue
		}
		nested := &Record{typ: ct.obj.schema.Name, url: recordURL(version, ct.obj.schema.Name, child.id)}
		db.fill(nested, ct.obj, child, group, depth+1, version)
		rec.set(rel, nested)
	}
}
