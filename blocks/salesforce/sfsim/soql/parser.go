package soql

import (
	"strconv"
	"strings"
)

// Parse parses a SOQL SELECT statement. Keywords are case-insensitive. It
// supports a field list (plain and dotted relationship fields) or COUNT(),
// FROM, WHERE (= != <> < > <= >= LIKE IN NOT IN, AND OR NOT, parentheses,
// null, true/false, numbers, strings, dates, datetimes, TODAY, YESTERDAY,
// TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n), ORDER BY (ASC/DESC, NULLS
// FIRST/LAST), LIMIT and OFFSET. As in Salesforce, AND and OR cannot be mixed
// at one level without parentheses.
//
// A syntax error is returned as an *Error with Code MALFORMED_QUERY; names are
// not checked here (simdb does that against its schema).
func Parse(stmt string) (*Query, error) {
	p := &parser{stmt: stmt, toks: lex(stmt), code: CodeMalformedQuery}
	q, err := p.parseQuery()
	if err != nil {
		return nil, err
	}
	return q, nil
}

type parser struct {
	stmt string
	toks []token
	i    int
	code string // error code for syntax errors
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// isKeyword reports whether t is the identifier kw, ignoring case.
func isKeyword(t token, kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }

func (p *parser) unexpected(t token) *Error {
	if t.kind == tIllegal && t.err == "unterminated" {
		return NewError(p.code, p.stmt, t.pos, "unexpected token: '<EOF>'")
	}
	return NewError(p.code, p.stmt, t.pos, "unexpected token: '"+t.display()+"'")
}

func (p *parser) expectKeyword(kw string) (token, *Error) {
	t := p.next()
	if !isKeyword(t, kw) {
		return t, p.unexpected(t)
	}
	return t, nil
}

func (p *parser) expect(kind tokKind) (token, *Error) {
	t := p.next()
	if t.kind != kind {
		return t, p.unexpected(t)
	}
	return t, nil
}

// reserved words cannot be used as field or object names.
var reserved = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true,
	"ORDER": true, "BY": true, "LIMIT": true, "OFFSET": true, "LIKE": true, "IN": true,
	"NULL": true, "TRUE": true, "FALSE": true, "ASC": true, "DESC": true, "NULLS": true,
	"FIND": true, "RETURNING": true, "WITH": true, "GROUP": true, "HAVING": true,
	"INCLUDES": true, "EXCLUDES": true, "USING": true,
}

func isName(t token) bool { return t.kind == tIdent && !reserved[strings.ToUpper(t.text)] }

func (p *parser) parseQuery() (*Query, *Error) {
	q := &Query{Stmt: p.stmt}
	if _, err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	if t := p.peek(); isKeyword(t, "COUNT") && p.peekAt(1).kind == tLParen {
		p.next()
		p.next()
		if _, err := p.expect(tRParen); err != nil {
			return nil, err
		}
		q.Count, q.CountPos = true, t.pos
	} else {
		for {
			f, err := p.parseField()
			if err != nil {
				return nil, err
			}
			q.Fields = append(q.Fields, f)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
	}
	if _, err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	obj := p.next()
	if !isName(obj) {
		return nil, p.unexpected(obj)
	}
	q.Object, q.ObjectPos = obj.text, obj.pos
	if err := p.parseTail(&q.Where, &q.OrderBy, &q.Limit, &q.HasLimit, &q.Offset, true); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	return q, nil
}

// parseTail parses [WHERE ...] [ORDER BY ...] [LIMIT n] [OFFSET n]; it is
// shared with SOSL's RETURNING clauses (which have no OFFSET here).
func (p *parser) parseTail(where *Expr, order *[]OrderItem, limit *int, hasLimit *bool, offset *int, allowOffset bool) *Error {
	if isKeyword(p.peek(), "WHERE") {
		p.next()
		e, err := p.parseCondition()
		if err != nil {
			return err
		}
		*where = e
	}
	if isKeyword(p.peek(), "ORDER") {
		p.next()
		if _, err := p.expectKeyword("BY"); err != nil {
			return err
		}
		items, err := p.parseOrderBy()
		if err != nil {
			return err
		}
		*order = items
	}
	if isKeyword(p.peek(), "LIMIT") {
		p.next()
		n, err := p.parseCount()
		if err != nil {
			return err
		}
		*limit, *hasLimit = n, true
	}
	if allowOffset && isKeyword(p.peek(), "OFFSET") {
		p.next()
		n, err := p.parseCount()
		if err != nil {
			return err
		}
		*offset = n
	}
	return nil
}

func (p *parser) parseCount() (int, *Error) {
	t := p.next()
	if t.kind != tNumber || strings.ContainsAny(t.text, ".+-") {
		return 0, p.unexpected(t)
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n < 0 {
		return 0, p.unexpected(t)
	}
	return n, nil
}

func (p *parser) parseField() (FieldRef, *Error) {
	t := p.next()
	if !isName(t) {
		return FieldRef{}, p.unexpected(t)
	}
	f := FieldRef{Path: []string{t.text}, Pos: t.pos}
	for p.peek().kind == tDot {
		p.next()
		t := p.next()
		if t.kind != tIdent {
			return FieldRef{}, p.unexpected(t)
		}
		f.Path = append(f.Path, t.text)
	}
	return f, nil
}

func (p *parser) parseOrderBy() ([]OrderItem, *Error) {
	var items []OrderItem
	for {
		f, err := p.parseField()
		if err != nil {
			return nil, err
		}
		it := OrderItem{Field: f}
		if isKeyword(p.peek(), "ASC") {
			p.next()
		} else if isKeyword(p.peek(), "DESC") {
			p.next()
			it.Desc = true
		}
		it.NullsLast = it.Desc
		if isKeyword(p.peek(), "NULLS") {
			p.next()
			t := p.next()
			switch {
			case isKeyword(t, "FIRST"):
				it.NullsLast = false
			case isKeyword(t, "LAST"):
				it.NullsLast = true
			default:
				return nil, p.unexpected(t)
			}
			it.NullsGiven = true
		}
		items = append(items, it)
		if p.peek().kind != tComma {
			return items, nil
		}
		p.next()
	}
}

// parseCondition parses a condition in which AND and OR may not be mixed at
// the same level without parentheses (Salesforce rejects "a AND b OR c" with
// "unexpected token: 'OR'").
func (p *parser) parseCondition() (Expr, *Error) {
	first, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	var op string
	switch {
	case isKeyword(t, "AND"):
		op = "AND"
	case isKeyword(t, "OR"):
		op = "OR"
	default:
		return first, nil
	}
	terms := []Expr{first}
	for {
		t := p.peek()
		if isKeyword(t, op) {
			p.next()
			x, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			terms = append(terms, x)
			continue
		}
		if isKeyword(t, "AND") || isKeyword(t, "OR") {
			return nil, p.unexpected(t)
		}
		break
	}
	if op == "AND" {
		return &And{Terms: terms}, nil
	}
	return &Or{Terms: terms}, nil
}

func (p *parser) parseUnary() (Expr, *Error) {
	t := p.peek()
	switch {
	case isKeyword(t, "NOT"):
		p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	case t.kind == tLParen:
		p.next()
		x, err := p.parseCondition()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen); err != nil {
			return nil, err
		}
		return x, nil
	}
	return p.parseComparison()
}

func (p *parser) parseComparison() (Expr, *Error) {
	f, err := p.parseField()
	if err != nil {
		return nil, err
	}
	t := p.next()
	c := &Comparison{Field: f, OpPos: t.pos}
	switch {
	case t.kind == tOp:
		switch t.text {
		case "=":
			c.Op = OpEq
		case "!=", "<>":
			c.Op = OpNe
		case "<":
			c.Op = OpLt
		case "<=":
			c.Op = OpLe
		case ">":
			c.Op = OpGt
		case ">=":
			c.Op = OpGe
		}
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		c.Value = v
	case isKeyword(t, "LIKE"):
		c.Op = OpLike
		s := p.next()
		if s.kind != tString {
			return nil, p.unexpected(s)
		}
		text, elems, bad, ok := unescapeString(s.text, true)
		if !ok {
			return nil, p.badEscape(s, bad)
		}
		c.Value = Literal{Kind: KindString, Pos: s.pos, Raw: "'" + s.text + "'", Str: text}
		c.Pattern = newLikePattern(text, elems)
	case isKeyword(t, "IN"):
		c.Op = OpIn
		if c.Values, err = p.parseList(); err != nil {
			return nil, err
		}
	case isKeyword(t, "NOT") && isKeyword(p.peek(), "IN"):
		p.next()
		c.Op = OpNotIn
		if c.Values, err = p.parseList(); err != nil {
			return nil, err
		}
	default:
		return nil, p.unexpected(t)
	}
	return c, nil
}

func (p *parser) parseList() ([]Literal, *Error) {
	if _, err := p.expect(tLParen); err != nil {
		return nil, err
	}
	var vals []Literal
	for {
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		t := p.next()
		if t.kind == tRParen {
			return vals, nil
		}
		if t.kind != tComma {
			return nil, p.unexpected(t)
		}
	}
}

func (p *parser) badEscape(s token, bad string) *Error {
	return NewError(p.code, p.stmt, s.pos,
		"Invalid string literal '"+s.text+"'. Illegal character sequence '"+bad+"' in string literal.")
}

func (p *parser) parseValue() (Literal, *Error) {
	t := p.next()
	lit := Literal{Pos: t.pos, Raw: t.text}
	switch t.kind {
	case tString:
		text, _, bad, ok := unescapeString(t.text, false)
		if !ok {
			return lit, p.badEscape(t, bad)
		}
		lit.Kind, lit.Str, lit.Raw = KindString, text, "'"+t.text+"'"
	case tNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return lit, p.unexpected(t)
		}
		lit.Kind, lit.Num = KindNumber, f
	case tDate, tDateTime:
		tm, ok := parseDateTime(t.kind, t.text)
		if !ok {
			return lit, p.unexpected(t)
		}
		lit.Kind, lit.Time = KindDate, tm
		if t.kind == tDateTime {
			lit.Kind = KindDateTime
		}
	case tIdent:
		up := strings.ToUpper(t.text)
		switch up {
		case "NULL":
			lit.Kind = KindNull
		case "TRUE", "FALSE":
			lit.Kind, lit.Bool = KindBool, up == "TRUE"
		default:
			takesN, ok := dateFuncs[up]
			if !ok {
				return lit, p.unexpected(t)
			}
			lit.Kind, lit.Func = KindDateFunc, up
			if takesN {
				if _, err := p.expect(tColon); err != nil {
					return lit, err
				}
				n, err := p.parseCount()
				if err != nil {
					return lit, err
				}
				lit.N = n
				lit.Raw = t.text + ":" + strconv.Itoa(n)
			}
		}
	default:
		return lit, p.unexpected(t)
	}
	return lit, nil
}
