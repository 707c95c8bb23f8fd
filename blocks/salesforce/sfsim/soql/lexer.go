package soql

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tNumber
	tString
	tDate
	tDateTime
	tOp // = != <> < > <= >=
	tLParen
	tRParen
	tComma
	tDot
	tColon
	tIllegal
)

type token struct {
	kind tokKind
	text string // source text (for tString: the raw text between the quotes)
	pos  Pos
	err  string // tIllegal / unterminated string: why
}

// display is the token as Salesforce quotes it in "unexpected token: '...'".
func (t token) display() string {
	switch t.kind {
	case tEOF:
		return "<EOF>"
	case tString:
		return "'" + t.text + "'"
	}
	return t.text
}

// lex splits a SOQL statement into tokens. It never fails: characters it
// does not understand become tIllegal tokens that the parser reports.
func lex(s string) []token {
	var toks []token
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		start := i
		switch {
		case r == '\'':
			j := i + 1
			closed := false
			for j < len(s) {
				if s[j] == '\\' {
					j += 2
					continue
				}
				if s[j] == '\'' {
					closed = true
					break
				}
				j++
			}
			if !closed {
				toks = append(toks, token{kind: tIllegal, text: s[start:], pos: Pos(start), err: "unterminated"})
				return append(toks, token{kind: tEOF, pos: Pos(len(s))})
			}
			toks = append(toks, token{kind: tString, text: s[i+1 : j], pos: Pos(start)})
			i = j + 1
		case isIdentStart(r):
			j := i
			for j < len(s) {
				r2, sz := utf8.DecodeRuneInString(s[j:])
				if !isIdentPart(r2) {
					break
				}
				j += sz
			}
			toks = append(toks, token{kind: tIdent, text: s[i:j], pos: Pos(start)})
			i = j
		case isDigit(r) || ((r == '-' || r == '+') && i+1 < len(s) && isDigit(rune(s[i+1]))):
			kind, n := lexNumberOrDate(s[i:])
			toks = append(toks, token{kind: kind, text: s[i : i+n], pos: Pos(start)})
			i += n
		case r == '(':
			toks = append(toks, token{kind: tLParen, text: "(", pos: Pos(start)})
			i++
		case r == ')':
			toks = append(toks, token{kind: tRParen, text: ")", pos: Pos(start)})
			i++
		case r == ',':
			toks = append(toks, token{kind: tComma, text: ",", pos: Pos(start)})
			i++
		case r == '.':
			toks = append(toks, token{kind: tDot, text: ".", pos: Pos(start)})
			i++
		case r == ':':
			toks = append(toks, token{kind: tColon, text: ":", pos: Pos(start)})
			i++
		case r == '=':
			toks = append(toks, token{kind: tOp, text: "=", pos: Pos(start)})
			i++
		case r == '!' && strings.HasPrefix(s[i:], "!="):
			toks = append(toks, token{kind: tOp, text: "!=", pos: Pos(start)})
			i += 2
		case r == '<' || r == '>':
			n := 1
			if strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">=") || strings.HasPrefix(s[i:], "<>") {
				n = 2
			}
			toks = append(toks, token{kind: tOp, text: s[i : i+n], pos: Pos(start)})
			i += n
		default:
			toks = append(toks, token{kind: tIllegal, text: s[i : i+size], pos: Pos(start)})
			i += size
		}
	}
	return append(toks, token{kind: tEOF, pos: Pos(len(s))})
}

func isDigit(r rune) bool      { return r >= '0' && r <= '9' }
func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool  { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// lexNumberOrDate scans a number, a date (YYYY-MM-DD) or a datetime
// (YYYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm)) at the start of s.
func lexNumberOrDate(s string) (tokKind, int) {
	if n := matchDate(s); n > 0 {
		if n < len(s) && (s[n] == 'T' || s[n] == 't') {
			if m := matchTimeZone(s[n+1:]); m > 0 {
				return tDateTime, n + 1 + m
			}
		}
		return tDate, n
	}
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i++
	}
	for i < len(s) && isDigit(rune(s[i])) {
		i++
	}
	if i+1 < len(s) && s[i] == '.' && isDigit(rune(s[i+1])) {
		i++
		for i < len(s) && isDigit(rune(s[i])) {
			i++
		}
	}
	return tNumber, i
}

// digits reports whether s starts with n ASCII digits.
func digits(s string, n int) bool {
	if len(s) < n {
		return false
	}
	for i := 0; i < n; i++ {
		if !isDigit(rune(s[i])) {
			return false
		}
	}
	return true
}

func matchDate(s string) int {
	if digits(s, 4) && len(s) >= 10 && s[4] == '-' && digits(s[5:], 2) && s[7] == '-' && digits(s[8:], 2) {
		return 10
	}
	return 0
}

// matchTimeZone matches hh:mm:ss[.fff](Z|±hh:mm) and returns its length.
func matchTimeZone(s string) int {
	if !(digits(s, 2) && len(s) >= 8 && s[2] == ':' && digits(s[3:], 2) && s[5] == ':' && digits(s[6:], 2)) {
		return 0
	}
	i := 8
	if i+1 < len(s) && s[i] == '.' && isDigit(rune(s[i+1])) {
		i++
		for i < len(s) && isDigit(rune(s[i])) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'Z' || s[i] == 'z') {
		return i + 1
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') && digits(s[i+1:], 2) && len(s) >= i+6 && s[i+3] == ':' && digits(s[i+4:], 2) {
		return i + 6
	}
	return 0
}

// parseDateTime parses a lexed tDate or tDateTime token into UTC.
func parseDateTime(kind tokKind, text string) (time.Time, bool) {
	if kind == tDate {
		t, err := time.Parse("2006-01-02", text)
		return t, err == nil
	}
	norm := strings.ToUpper(text)
	t, err := time.Parse(time.RFC3339Nano, norm)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// unescapeString decodes the body of a quoted SOQL string per Salesforce's
// "Quoted String Escape Sequences". When like is true, \% and \_ are allowed
// and produce literal elements of the returned pattern; elsewhere they are an
// error, as is any other backslash sequence. bad is the offending sequence
// when ok is false.
func unescapeString(raw string, like bool) (text string, pat []LikeElem, bad string, ok bool) {
	var b strings.Builder
	var lit strings.Builder // current literal run of the LIKE pattern
	flush := func() {
		if lit.Len() > 0 {
			pat = append(pat, LikeElem{Kind: LikeLiteral, Text: lit.String()})
			lit.Reset()
		}
	}
	emit := func(r rune) {
		b.WriteRune(r)
		lit.WriteRune(r)
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			r, size := utf8.DecodeRuneInString(raw[i:])
			i += size
			if like && (r == '%' || r == '_') {
				flush()
				k := LikeAny
				if r == '_' {
					k = LikeOne
				}
				pat = append(pat, LikeElem{Kind: k})
				b.WriteRune(r)
				continue
			}
			emit(r)
			continue
		}
		if i+1 >= len(raw) {
			return "", nil, raw[i:], false
		}
		e := raw[i+1]
		switch e {
		case 'n', 'N':
			emit('\n')
		case 'r', 'R':
			emit('\r')
		case 't', 'T':
			emit('\t')
		case 'b', 'B':
			emit('\b')
		case 'f', 'F':
			emit('\f')
		case '"', '\'', '\\':
			emit(rune(e))
		case '%', '_':
			if !like {
				return "", nil, raw[i : i+2], false
			}
			emit(rune(e))
		case 'u':
			if i+6 > len(raw) {
				return "", nil, raw[i:], false
			}
			v, err := strconv.ParseUint(raw[i+2:i+6], 16, 32)
			if err != nil {
				return "", nil, raw[i : i+6], false
			}
			emit(rune(v))
			i += 6
			continue
		default:
			_, size := utf8.DecodeRuneInString(raw[i+1:])
			return "", nil, raw[i : i+1+size], false
		}
		i += 2
	}
	flush()
	return b.String(), pat, "", true
}
