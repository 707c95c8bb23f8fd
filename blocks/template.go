package blocks

import (
	"strings"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// A template is a SOQL or SOSL statement, or an Insert field value, in which
// scenario variables are written $(name). Bright Pattern pastes a variable's
// value in as plain text, so a value holding a quote rewrites the statement.
// sfblocks instead escapes each value for the place it stands in, which the
// scanner below works out from the template text alone (values are never
// rescanned):
//
//	'...$(x)...'            EscapeSOQLString: x is text inside the literal
//	LIKE '...$(x)...'       EscapeSOQLLike: x matches literally, while % and _
//	                        written in the template stay wildcards
//	FIND {...$(x)...}       EscapeSOSL (SOSL only)
//	$(x) outside quotes     only a number, date, datetime or boolean
//
// "$$(" stands for a literal "$(".

// varKind is the JSON type of a variable's value.
type varKind uint8

const (
	varString varKind = iota
	varNumber
	varBool
)

// variable is one entry of a job's variables, as text plus its JSON type.
type variable struct {
	kind varKind
	text string
}

// maxVarNameLen bounds a variable name.
const maxVarNameLen = 128

// validVarName reports whether s is a variable name: a letter or _, then
// letters, digits, _ and . (Bright Pattern's item.field style).
func validVarName(s string) bool {
	if s == "" || len(s) > maxVarNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// placeholderAt parses the placeholder that starts at s[i] == '$'. It
// returns the variable name and the bytes consumed; name "" with n == 3 is
// the "$$(" escape, and n == 0 means s[i] is a lone '$'.
func placeholderAt(s string, i int, where string) (name string, n int, err error) {
	if strings.HasPrefix(s[i:], "$$(") {
		return "", 3, nil
	}
	if i+1 >= len(s) || s[i+1] != '(' {
		return "", 0, nil
	}
	end := strings.IndexByte(s[i+2:], ')')
	if end < 0 || !validVarName(s[i+2:i+2+end]) {
		return "", 0, invalidf("malformed placeholder at offset %d of the %s: write $(name) with a name of letters, digits, _ and ., or $$( for a literal $(", i, where)
	}
	return s[i+2 : i+2+end], end + 3, nil
}

// lookupVar finds name in vars; where says what the template is, for the
// message.
func lookupVar(vars map[string]variable, name, where string) (variable, error) {
	v, ok := vars[name]
	if !ok {
		return variable{}, invalidf("%s uses variable %q, which is not in variables; add it to variables", where, name)
	}
	return v, nil
}

// substituteText replaces the placeholders of s by the values' text, with
// no escaping: for Insert field values, which travel as JSON. where names s
// in messages ("field \"Subject\"").
func substituteText(s string, vars map[string]variable, where string) (string, error) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		if s[i] != '$' {
			j := strings.IndexByte(s[i:], '$')
			if j < 0 {
				j = len(s) - i
			}
			b.WriteString(s[i : i+j])
			i += j
			continue
		}
		name, n, err := placeholderAt(s, i, where)
		if err != nil {
			return "", err
		}
		switch {
		case n == 0:
			b.WriteByte('$')
			i++
			continue
		case name == "":
			b.WriteString("$(")
		default:
			v, err := lookupVar(vars, name, where)
			if err != nil {
				return "", err
			}
			b.WriteString(v.text)
		}
		i += n
	}
	return b.String(), nil
}

// wholePlaceholder returns the variable name when s is exactly one
// placeholder, such as "$(amount)".
func wholePlaceholder(s string) (string, bool) {
	if len(s) < 4 || s[0] != '$' || s[1] != '(' || s[len(s)-1] != ')' {
		return "", false
	}
	name := s[2 : len(s)-1]
	return name, validVarName(name)
}

// scanner states of renderStatement.
const (
	stOutside = iota
	stString  // inside '...'
	stFind    // inside the braces of FIND {...}
)

// previous token outside literals, as far as escaping cares.
const (
	prevOther = iota
	prevLike
	prevFind
)

// renderStatement substitutes the placeholders of a SOQL (sosl false) or
// SOSL statement, escaping each value for the place it stands in.
func renderStatement(tmpl string, sosl bool, vars map[string]variable) (string, error) {
	const where = "query"
	var b strings.Builder
	b.Grow(len(tmpl) + 64)
	state, prev, like, start := stOutside, prevOther, false, 0
	phrase := false // inside "..." within FIND braces
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		if c == '$' {
			name, n, err := placeholderAt(tmpl, i, where)
			if err != nil {
				return "", err
			}
			if n == 0 {
				b.WriteByte('$')
				i++
				prev = prevOther
				continue
			}
			if name == "" {
				b.WriteString("$(")
				i += n
				continue
			}
			v, err := lookupVar(vars, name, where)
			if err != nil {
				return "", err
			}
			switch state {
			case stString:
				if like {
					b.WriteString(salesforce.EscapeSOQLLike(v.text))
				} else {
					b.WriteString(salesforce.EscapeSOQLString(v.text))
				}
			case stFind:
				esc := salesforce.EscapeSOSL(v.text)
				if phrase && len(esc) >= 2 && esc[0] == '"' {
					// EscapeSOSL quoted a value holding AND/OR/NOT; inside the
					// template's own "phrase" those words are already literal
					// and a second pair of quotes would end the phrase.
					esc = esc[1 : len(esc)-1]
				}
				b.WriteString(esc)
			default:
				lit, ok := bareLiteral(v)
				if !ok {
					return "", invalidf("variable %q stands outside quotes in the query, so its value must be a number, a date (YYYY-MM-DD), a datetime (YYYY-MM-DDThh:mm:ssZ) or true/false; put $(%s) between quotes to use it as text", name, name)
				}
				b.WriteString(lit)
				prev = prevOther
			}
			i += n
			continue
		}
		switch state {
		case stString, stFind:
			if c == '\\' {
				if i+1 >= len(tmpl) {
					i++ // a trailing backslash: reported as unterminated below
					continue
				}
				b.WriteByte(c)
				b.WriteByte(tmpl[i+1])
				i += 2
				continue
			}
			if (state == stString && c == '\'') || (state == stFind && c == '}') {
				state, prev = stOutside, prevOther
			}
			// Quotes do not protect a } (Salesforce wants it escaped
			// everywhere in the term), so the braces end at the first
			// unescaped one; a phrase only changes how values are quoted.
			if state == stFind && c == '"' {
				phrase = !phrase
			}
			b.WriteByte(c)
			i++
		default:
			switch {
			case c == '\'':
				state, like, start = stString, prev == prevLike, i
			case c == '{' && sosl && prev == prevFind:
				state, start, phrase = stFind, i, false
			case isWordByte(c):
				j := i + 1
				for j < len(tmpl) && isWordByte(tmpl[j]) {
					j++
				}
				word := tmpl[i:j]
				switch {
				case strings.EqualFold(word, "LIKE"):
					prev = prevLike
				case strings.EqualFold(word, "FIND"):
					prev = prevFind
				default:
					prev = prevOther
				}
				b.WriteString(word)
				i = j
				continue
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
				// Whitespace keeps the previous token.
			default:
				prev = prevOther
			}
			b.WriteByte(c)
			i++
		}
	}
	switch state {
	case stString:
		return "", invalidf("the query has an unterminated string literal starting at offset %d; close it with '", start)
	case stFind:
		return "", invalidf("the query has an unterminated FIND {...} term starting at offset %d; close it with }", start)
	}
	return b.String(), nil
}

func isWordByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.'
}

// bareLiteral returns v as a SOQL literal that may stand outside quotes: a
// number, a date, a datetime or a boolean.
func bareLiteral(v variable) (string, bool) {
	switch v.kind {
	case varBool:
		return v.text, true
	case varNumber:
		return v.text, isSOQLNumber(v.text)
	}
	s := v.text
	switch {
	case isSOQLNumber(s), isDate(s), isDateTime(s):
		return s, true
	case strings.EqualFold(s, "true"):
		return "true", true
	case strings.EqualFold(s, "false"):
		return "false", true
	}
	return "", false
}

// isSOQLNumber reports whether s is a SOQL numeric literal: an optional
// sign, digits, and an optional fraction (SOQL has no exponent notation).
func isSOQLNumber(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	return allDigits(intPart) && intPart != "" && (!hasFrac || (frac != "" && allDigits(frac)))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func num(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// isDate reports whether s is a SOQL date literal YYYY-MM-DD of a real
// calendar day.
func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' || !allDigits(s[:4]) || !allDigits(s[5:7]) || !allDigits(s[8:]) {
		return false
	}
	y, m, d := num(s[:4]), num(s[5:7]), num(s[8:])
	if m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && (y%4 == 0 && y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

// isDateTime reports whether s is a SOQL dateTime literal, in one of the
// documented forms YYYY-MM-DDThh:mm:ssZ, YYYY-MM-DDThh:mm:ss+hh:mm or
// YYYY-MM-DDThh:mm:ss-hh:mm.
func isDateTime(s string) bool {
	if len(s) < 20 || !isDate(s[:10]) || s[10] != 'T' || !isClock(s[11:19], true) {
		return false
	}
	zone := s[19:]
	if zone == "Z" {
		return true
	}
	return len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && isClock(zone[1:], false)
}

// isClock reports whether s is hh:mm:ss (seconds true) or hh:mm.
func isClock(s string, seconds bool) bool {
	want := 5
	if seconds {
		want = 8
	}
	if len(s) != want || s[2] != ':' || !allDigits(s[:2]) || !allDigits(s[3:5]) ||
		num(s[:2]) > 23 || num(s[3:5]) > 59 {
		return false
	}
	return !seconds || (s[5] == ':' && allDigits(s[6:8]) && num(s[6:8]) <= 59)
}
