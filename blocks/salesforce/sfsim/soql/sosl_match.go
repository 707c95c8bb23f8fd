package soql

import (
	"strings"
	"unicode"
)

// EvalSearch evaluates a search expression, asking match whether each term
// matches the record at hand.
func EvalSearch(e SearchExpr, match func(*SearchTerm) bool) bool {
	switch n := e.(type) {
	case *SearchTerm:
		return match(n)
	case *SearchAnd:
		return EvalSearch(n.L, match) && EvalSearch(n.R, match)
	case *SearchOr:
		return EvalSearch(n.L, match) || EvalSearch(n.R, match)
	case *SearchAndNot:
		return EvalSearch(n.L, match) && !EvalSearch(n.R, match)
	}
	return false
}

// MatchText reports whether the term matches the given field values,
// ignoring case. A phrase must appear as a whole (whitespace-normalised) in
// one value; a run of words matches when every word appears in some value.
// Words are matched as substrings, and words with wildcards (* any sequence,
// ? one character) are matched against each whitespace-separated token of a
// value. This is a simplification of Salesforce's token index: it finds
// everything Salesforce would, and sometimes a little more.
func (t *SearchTerm) MatchText(values []string) bool {
	if t.Phrase {
		p := globPattern(normSpace(t.runes), true)
		for _, v := range values {
			if p.Match(strings.Join(strings.Fields(v), " ")) {
				return true
			}
		}
		return false
	}
	words := splitWords(t.runes)
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		if !matchWord(w, values) {
			return false
		}
	}
	return true
}

func matchWord(w []termRune, values []string) bool {
	wild := false
	for _, r := range w {
		wild = wild || r.wild
	}
	if !wild {
		needle := strings.ToLower(runesText(w))
		for _, v := range values {
			if strings.Contains(strings.ToLower(v), needle) {
				return true
			}
		}
		return false
	}
	p := globPattern(w, false)
	for _, v := range values {
		for _, tok := range strings.Fields(v) {
			if p.Match(tok) {
				return true
			}
		}
	}
	return false
}

// MatchPhone reports whether the term, read as a phone number, matches one
// of the phone values: Salesforce normalises phone numbers, so only digits
// are compared and the term's digits must occur in the value's digits. A
// term containing letters or fewer than three digits never matches a phone.
func (t *SearchTerm) MatchPhone(phones []string) bool {
	var d strings.Builder
	for _, r := range t.runes {
		switch {
		case r.r >= '0' && r.r <= '9':
			d.WriteRune(r.r)
		case unicode.IsLetter(r.r):
			return false
		}
	}
	if d.Len() < 3 {
		return false
	}
	for _, p := range phones {
		if strings.Contains(Digits(p), d.String()) {
			return true
		}
	}
	return false
}

// Digits returns the ASCII digits of s, in order.
func Digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func splitWords(rs []termRune) [][]termRune {
	var out [][]termRune
	var cur []termRune
	for _, r := range rs {
		if unicode.IsSpace(r.r) && !r.wild {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, r)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func normSpace(rs []termRune) []termRune {
	var out []termRune
	for _, w := range splitWords(rs) {
		if len(out) > 0 {
			out = append(out, termRune{r: ' '})
		}
		out = append(out, w...)
	}
	return out
}

// globPattern turns term runes into a LIKE pattern; contains wraps it in
// leading and trailing "any" elements.
func globPattern(rs []termRune, contains bool) *LikePattern {
	p := &LikePattern{}
	if contains {
		p.Elems = append(p.Elems, LikeElem{Kind: LikeAny})
	}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.Elems = append(p.Elems, LikeElem{Kind: LikeLiteral, Text: lit.String()})
			lit.Reset()
		}
	}
	for _, r := range rs {
		switch {
		case r.wild && r.r == '*':
			flush()
			p.Elems = append(p.Elems, LikeElem{Kind: LikeAny})
		case r.wild && r.r == '?':
			flush()
			p.Elems = append(p.Elems, LikeElem{Kind: LikeOne})
		default:
			lit.WriteRune(r.r)
		}
	}
	flush()
	if contains {
		p.Elems = append(p.Elems, LikeElem{Kind: LikeAny})
	}
	p.folded, p.exact = compileLike(p.Elems, true), compileLike(p.Elems, false)
	return p
}
