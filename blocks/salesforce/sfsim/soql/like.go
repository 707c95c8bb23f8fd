package soql

import (
	"unicode"
	"unicode/utf8"
)

// LikeKind is the kind of one element of a LIKE pattern.
type LikeKind int

// LIKE pattern elements: literal text, % (any sequence) and _ (one character).
const (
	LikeLiteral LikeKind = iota
	LikeAny
	LikeOne
)

// LikeElem is one element of a parsed LIKE pattern.
type LikeElem struct {
	Kind LikeKind
	Text string // LikeLiteral only: the unescaped text (\% and \_ give % and _)
}

// LikePattern is a parsed LIKE pattern. Matching is case-insensitive, as in
// Salesforce, and anchored at both ends.
type LikePattern struct {
	Text  string // the pattern after unescaping; wildcards appear as % and _
	Elems []LikeElem

	folded []likeRune // lower-cased matcher; built from Elems when nil
}

// Literal reports the text the pattern matches when it has no wildcards.
func (p *LikePattern) Literal() (string, bool) {
	for _, e := range p.Elems {
		if e.Kind != LikeLiteral {
			return "", false
		}
	}
	return p.Text, true
}

// Match reports whether s matches the whole pattern, ignoring case.
func (p *LikePattern) Match(s string) bool {
	pat := p.folded
	if pat == nil {
		pat = compileLike(p.Elems)
	}
	// Classic backtracking-on-last-% algorithm over the runes of s: O(n*m)
	// in the worst case, never exponential, and allocation-free.
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		r, size := utf8.DecodeRuneInString(s[si:])
		switch {
		case pi < len(pat) && pat[pi].kind == LikeAny:
			star, mark = pi, si
			pi++
		case pi < len(pat) && (pat[pi].kind == LikeOne || (pat[pi].kind == LikeLiteral && pat[pi].r == unicode.ToLower(r))):
			si += size
			pi++
		case star >= 0:
			pi = star + 1
			_, msize := utf8.DecodeRuneInString(s[mark:])
			mark += msize
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi].kind == LikeAny {
		pi++
	}
	return pi == len(pat)
}

// newLikePattern builds a pattern with its matcher precompiled, so a
// pattern shared by concurrent matches is never written to.
func newLikePattern(text string, elems []LikeElem) *LikePattern {
	return &LikePattern{Text: text, Elems: elems, folded: compileLike(elems)}
}

func compileLike(elems []LikeElem) []likeRune {
	pat := []likeRune{}
	for _, e := range elems {
		switch e.Kind {
		case LikeAny:
			pat = append(pat, likeRune{kind: LikeAny})
		case LikeOne:
			pat = append(pat, likeRune{kind: LikeOne})
		default:
			for _, r := range e.Text {
				pat = append(pat, likeRune{r: unicode.ToLower(r)})
			}
		}
	}
	return pat
}

type likeRune struct {
	kind LikeKind
	r    rune
}
