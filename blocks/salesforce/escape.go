package salesforce

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// EscapeSOQLString escapes s for use between single quotes in a SOQL
// statement, following Salesforce's "Quoted String Escape Sequences": the
// backslash, both quote characters and the control characters that have a
// named sequence (\n \r \t \b \f) are escaped; any other control character
// is written as \uXXXX. The caller adds the surrounding quotes.
//
// Use [EscapeSOQLLike] instead when the literal is the pattern of a LIKE
// comparison, so that % and _ in s match themselves.
func EscapeSOQLString(s string) string {
	return escapeSOQL(s, false)
}

// EscapeSOQLLike escapes s like [EscapeSOQLString] and also escapes the LIKE
// wildcards % and _, so that the pattern matches s literally. Salesforce
// accepts \% and \_ only inside a LIKE pattern; elsewhere they are an error,
// which is why this is a separate function.
func EscapeSOQLLike(s string) string {
	return escapeSOQL(s, true)
}

func escapeSOQL(s string, like bool) string {
	if !needsSOQLEscape(s, like) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '%', '_':
			if like {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsSOQLEscape(s string, like bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\', c == '\'', c == '"', c < 0x20, c == 0x7f, c >= utf8.RuneSelf:
			return true
		case like && (c == '%' || c == '_'):
			return true
		}
	}
	return false
}

// soslReserved lists the characters that Salesforce reserves in the search
// term of a SOSL FIND clause; each must be preceded by a backslash.
const soslReserved = `?&|!{}[]()^~*:\"'+-`

// EscapeSOSL escapes s for use inside the braces of a SOSL FIND clause
// (FIND {...}), so that every reserved character (? & | ! { } [ ] ( ) ^ ~ * :
// \ " ' + -) is searched for literally instead of acting as an operator.
//
// The words AND, OR and NOT (in any case) are operators in a search term
// even though they contain no reserved character, so when s contains one of
// them as a word the escaped text is also wrapped in double quotes: Salesforce
// then reads it as one phrase and the words as literals ("Delimiting and and
// or as literals", SOSL examples).
func EscapeSOSL(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	quote := hasSOSLOperatorWord(s)
	if quote {
		b.WriteByte('"')
	}
	for _, r := range s {
		if strings.ContainsRune(soslReserved, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	if quote {
		b.WriteByte('"')
	}
	return b.String()
}

// hasSOSLOperatorWord reports whether a whitespace-separated word of s is a
// SOSL logical operator.
func hasSOSLOperatorWord(s string) bool {
	for _, w := range strings.Fields(s) {
		if strings.EqualFold(w, "and") || strings.EqualFold(w, "or") || strings.EqualFold(w, "not") {
			return true
		}
	}
	return false
}
