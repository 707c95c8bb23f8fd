package soql

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Search is a parsed SOSL statement:
//
//	FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS]
//	[RETURNING Obj[(fields [WHERE ...] [ORDER BY ...] [LIMIT n])], ...] [LIMIT n]
type Search struct {
	Stmt      string
	Term      SearchExpr // the parsed search expression
	RawTerm   string     // the text between the braces, as written
	TermPos   Pos        // position of the opening brace
	In        string     // ALL, NAME, EMAIL or PHONE (upper case); ALL when omitted
	Returning []Returning
	Limit     int  // overall LIMIT, meaningful when HasLimit
	HasLimit  bool //
}

// Returning is one object of a RETURNING clause.
type Returning struct {
	Object   string
	Pos      Pos
	Fields   []FieldRef // empty: Id only, as Salesforce does
	Where    Expr
	OrderBy  []OrderItem
	Limit    int
	HasLimit bool
}

// SearchExpr is a node of a search term: *SearchTerm, *SearchAnd, *SearchOr
// or *SearchAndNot.
type SearchExpr interface{ searchNode() }

// SearchTerm is a run of words or a quoted phrase. Text is the unescaped
// text (an escaped reserved character appears as itself; unescaped * and ?
// remain and set Wildcard).
type SearchTerm struct {
	Text     string
	Phrase   bool // written in double quotes
	Wildcard bool // contains an unescaped * or ?
	Pos      Pos
	runes    []termRune
}

// SearchAnd matches when both sides match (explicit AND or adjacency).
type SearchAnd struct{ L, R SearchExpr }

// SearchOr matches when either side matches.
type SearchOr struct{ L, R SearchExpr }

// SearchAndNot matches when L matches and R does not.
type SearchAndNot struct{ L, R SearchExpr }

func (*SearchTerm) searchNode()   {}
func (*SearchAnd) searchNode()    {}
func (*SearchOr) searchNode()     {}
func (*SearchAndNot) searchNode() {}

type termRune struct {
	r    rune
	wild bool // an unescaped * or ?
}

// soslReserved are the characters Salesforce reserves in a search term;
// each must be escaped with a backslash to be searched for literally.
const soslReserved = `?&|!{}[]()^~*:\"'+-`

// ParseSearch parses a SOSL FIND statement. Syntax errors are *Error with
// Code MALFORMED_SEARCH; an empty term gives "No search term found. The
// search term must be enclosed in braces."
func ParseSearch(stmt string) (*Search, error) {
	s, err := parseSearch(stmt)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func parseSearch(stmt string) (*Search, *Error) {
	i := skipSpace(stmt, 0)
	if len(stmt)-i < 4 || !strings.EqualFold(stmt[i:i+4], "FIND") {
		return nil, searchUnexpected(stmt, i)
	}
	i = skipSpace(stmt, i+4)
	if i >= len(stmt) || stmt[i] != '{' {
		return nil, NewPlainError(CodeMalformedSearch, stmt, "No search term found. The search term must be enclosed in braces.")
	}
	open := i
	j := open + 1
	for j < len(stmt) && stmt[j] != '}' {
		if stmt[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(stmt) {
		return nil, NewPlainError(CodeMalformedSearch, stmt, "No search term found. The search term must be enclosed in braces.")
	}
	s := &Search{Stmt: stmt, RawTerm: stmt[open+1 : j], TermPos: Pos(open), In: "ALL"}
	term, err := parseTerm(stmt, open+1, j)
	if err != nil {
		return nil, err
	}
	s.Term = term

	toks := lex(stmt[j+1:])
	for k := range toks {
		toks[k].pos += Pos(j + 1)
	}
	p := &parser{stmt: stmt, toks: toks, code: CodeMalformedSearch}
	if isKeyword(p.peek(), "IN") {
		p.next()
		g := p.next()
		up := strings.ToUpper(g.text)
		if g.kind != tIdent || (up != "ALL" && up != "NAME" && up != "EMAIL" && up != "PHONE") {
			return nil, p.unexpected(g)
		}
		if _, err := p.expectKeyword("FIELDS"); err != nil {
			return nil, err
		}
		s.In = up
	}
	if isKeyword(p.peek(), "RETURNING") {
		p.next()
		for {
			r, err := p.parseReturning()
			if err != nil {
				return nil, err
			}
			s.Returning = append(s.Returning, r)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
	}
	if isKeyword(p.peek(), "LIMIT") {
		p.next()
		n, err := p.parseCount()
		if err != nil {
			return nil, err
		}
		s.Limit, s.HasLimit = n, true
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	return s, nil
}

func searchUnexpected(stmt string, i int) *Error {
	toks := lex(stmt[i:])
	t := toks[0]
	t.pos += Pos(i)
	return NewError(CodeMalformedSearch, stmt, t.pos, "unexpected token: '"+t.display()+"'")
}

func (p *parser) parseReturning() (Returning, *Error) {
	t := p.next()
	if !isName(t) {
		return Returning{}, p.unexpected(t)
	}
	r := Returning{Object: t.text, Pos: t.pos}
	if p.peek().kind != tLParen {
		return r, nil
	}
	p.next()
	for {
		f, err := p.parseField()
		if err != nil {
			return r, err
		}
		r.Fields = append(r.Fields, f)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	var off int
	if err := p.parseTail(&r.Where, &r.OrderBy, &r.Limit, &r.HasLimit, &off, false); err != nil {
		return r, err
	}
	if _, err := p.expect(tRParen); err != nil {
		return r, err
	}
	return r, nil
}

// ParseSearchTerm parses a bare search term (the q parameter of a
// parameterized search, or the text between FIND's braces) with the same
// rules as [ParseSearch].
func ParseSearchTerm(q string) (SearchExpr, error) {
	e, err := parseTerm(q, 0, len(q))
	if err != nil {
		return nil, err
	}
	return e, nil
}

func skipSpace(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}

// A search-term token.
type stok struct {
	kind   int // sWord, sPhrase, sLParen, sRParen, sAnd, sOr, sNot
	pos    Pos
	ustart int // word: start offset in the unescaped buffer
	uend   int
	runes  []termRune
	text   string // phrase: unescaped text
}

const (
	sWord = iota
	sPhrase
	sLParen
	sRParen
	sAnd
	sOr
	sNot
)

// termLexer scans stmt[start:end], the inside of FIND's braces.
type termLexer struct {
	stmt string
	u    []termRune // unescaped text of the whole term, whitespace included
	toks []stok
}

func parseTerm(stmt string, start, end int) (SearchExpr, *Error) {
	lx := &termLexer{stmt: stmt}
	if err := lx.scan(start, end); err != nil {
		return nil, err
	}
	if len(lx.toks) == 0 {
		return nil, NewPlainError(CodeMalformedSearch, stmt, "No search term found. The search term must be enclosed in braces.")
	}
	tp := &termParser{lx: lx, end: Pos(end)}
	e, err := tp.parseOr()
	if err != nil {
		return nil, err
	}
	if tp.i < len(lx.toks) {
		return nil, tp.unexpected(lx.toks[tp.i])
	}
	return e, nil
}

func (lx *termLexer) scan(start, end int) *Error {
	s := lx.stmt
	for i := start; i < end; {
		r, size := utf8.DecodeRuneInString(s[i:end])
		switch {
		case unicode.IsSpace(r):
			lx.u = append(lx.u, termRune{r: r})
			i += size
		case r == '(' || r == ')':
			k := sLParen
			if r == ')' {
				k = sRParen
			}
			lx.toks = append(lx.toks, stok{kind: k, pos: Pos(i)})
			lx.u = append(lx.u, termRune{r: r})
			i += size
		case r == '"':
			j := i + 1
			var pr []termRune
			closed := false
			for j < end {
				r2, sz := utf8.DecodeRuneInString(s[j:end])
				if r2 == '\\' {
					if j+1 >= end {
						break
					}
					r3, sz3 := utf8.DecodeRuneInString(s[j+1 : end])
					pr = append(pr, termRune{r: r3})
					j += 1 + sz3
					continue
				}
				if r2 == '"' {
					closed = true
					j += sz
					break
				}
				if err := lx.checkReserved(r2, j); err != nil {
					return err
				}
				pr = append(pr, termRune{r: r2, wild: r2 == '*' || r2 == '?'})
				j += sz
			}
			if !closed {
				return NewError(CodeMalformedSearch, s, Pos(i), "unmatched quote in search term")
			}
			lx.toks = append(lx.toks, stok{kind: sPhrase, pos: Pos(i), runes: pr, text: runesText(pr)})
			lx.u = append(lx.u, termRune{r: '"'})
			i = j
		default:
			tokStart := len(lx.u)
			escaped := false
			j := i
			for j < end {
				r2, sz := utf8.DecodeRuneInString(s[j:end])
				if unicode.IsSpace(r2) || r2 == '(' || r2 == ')' || r2 == '"' {
					break
				}
				if r2 == '\\' {
					if j+1 >= end {
						return NewError(CodeMalformedSearch, s, Pos(j), "search term ends with an escape character")
					}
					r3, sz3 := utf8.DecodeRuneInString(s[j+1 : end])
					lx.u = append(lx.u, termRune{r: r3})
					escaped = true
					j += 1 + sz3
					continue
				}
				if err := lx.checkReserved(r2, j); err != nil {
					return err
				}
				lx.u = append(lx.u, termRune{r: r2, wild: r2 == '*' || r2 == '?'})
				j += sz
			}
			word := stok{kind: sWord, pos: Pos(i), ustart: tokStart, uend: len(lx.u)}
			if !escaped {
				switch strings.ToUpper(s[i:j]) {
				case "AND":
					word.kind = sAnd
				case "OR":
					word.kind = sOr
				case "NOT":
					word.kind = sNot
				}
			}
			lx.toks = append(lx.toks, word)
			i = j
		}
	}
	return nil
}

// checkReserved rejects an unescaped reserved character other than the
// wildcards, quotes and parentheses the grammar uses; Salesforce documents
// that "an error occurs if you do not precede reserved characters with a
// backslash".
func (lx *termLexer) checkReserved(r rune, at int) *Error {
	if r == '*' || r == '?' || r == '(' || r == ')' || r == '"' {
		return nil
	}
	if strings.ContainsRune(soslReserved, r) {
		return NewError(CodeMalformedSearch, lx.stmt, Pos(at),
			"unexpected token: '"+string(r)+"' (reserved characters in a search term must be escaped with a backslash)")
	}
	return nil
}

func runesText(rs []termRune) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteRune(r.r)
	}
	return b.String()
}

type termParser struct {
	lx  *termLexer
	i   int
	end Pos
}

func (tp *termParser) unexpected(t stok) *Error {
	text := "unexpected token"
	switch t.kind {
	case sRParen:
		text = "unexpected token: ')'"
	case sAnd:
		text = "unexpected token: 'AND'"
	case sOr:
		text = "unexpected token: 'OR'"
	case sNot:
		text = "unexpected token: 'NOT'"
	}
	return NewError(CodeMalformedSearch, tp.lx.stmt, t.pos, text)
}

func (tp *termParser) eof() *Error {
	return NewError(CodeMalformedSearch, tp.lx.stmt, tp.end, "unexpected token: '}'")
}

func (tp *termParser) peek() (stok, bool) {
	if tp.i < len(tp.lx.toks) {
		return tp.lx.toks[tp.i], true
	}
	return stok{}, false
}

func (tp *termParser) parseOr() (SearchExpr, *Error) {
	l, err := tp.parseAnd()
	if err != nil {
		return nil, err
	}
	for {
		t, ok := tp.peek()
		if !ok || t.kind != sOr {
			return l, nil
		}
		tp.i++
		r, err := tp.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &SearchOr{L: l, R: r}
	}
}

func (tp *termParser) parseAnd() (SearchExpr, *Error) {
	l, err := tp.parsePrimary()
	if err != nil {
		return nil, err
	}
	for {
		t, ok := tp.peek()
		switch {
		case !ok || t.kind == sOr || t.kind == sRParen:
			return l, nil
		case t.kind == sAnd:
			tp.i++
			not := false
			if n, ok := tp.peek(); ok && n.kind == sNot {
				tp.i++
				not = true
			}
			r, err := tp.parsePrimary()
			if err != nil {
				return nil, err
			}
			if not {
				l = &SearchAndNot{L: l, R: r}
			} else {
				l = &SearchAnd{L: l, R: r}
			}
		default: // adjacency is an implicit AND
			r, err := tp.parsePrimary()
			if err != nil {
				return nil, err
			}
			l = &SearchAnd{L: l, R: r}
		}
	}
}

func (tp *termParser) parsePrimary() (SearchExpr, *Error) {
	t, ok := tp.peek()
	if !ok {
		return nil, tp.eof()
	}
	switch t.kind {
	case sLParen:
		tp.i++
		e, err := tp.parseOr()
		if err != nil {
			return nil, err
		}
		c, ok := tp.peek()
		if !ok {
			return nil, tp.eof()
		}
		if c.kind != sRParen {
			return nil, tp.unexpected(c)
		}
		tp.i++
		return e, nil
	case sPhrase:
		tp.i++
		return newTerm(t.runes, true, t.pos), nil
	case sWord:
		// A run of adjacent words is one term. When the run is the whole
		// search term, it keeps the surrounding whitespace so that Text is
		// exactly what was escaped.
		first := tp.i
		for tp.i < len(tp.lx.toks) && tp.lx.toks[tp.i].kind == sWord {
			tp.i++
		}
		lo, hi := tp.lx.toks[first].ustart, tp.lx.toks[tp.i-1].uend
		if first == 0 {
			lo = 0
		}
		if tp.i == len(tp.lx.toks) {
			hi = len(tp.lx.u)
		}
		return newTerm(tp.lx.u[lo:hi], false, t.pos), nil
	}
	return nil, tp.unexpected(t)
}

func newTerm(rs []termRune, phrase bool, pos Pos) *SearchTerm {
	t := &SearchTerm{Text: runesText(rs), Phrase: phrase, Pos: pos, runes: rs}
	for _, r := range rs {
		if r.wild {
			t.Wildcard = true
		}
	}
	return t
}
