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

// LikePattern is a parsed LIKE pattern. [LikePattern.Match] ignores case, as
// Salesforce does for most fields; [LikePattern.MatchCase] does not, for
// unique case-sensitive fields. Both are anchored at both ends.
type LikePattern struct {
	Text  string // the pattern after unescaping; wildcards appear as % and _
	Elems []LikeElem

	folded []likeRune // lower-cased matcher; built from Elems when nil
	exact  []likeRune // case-preserving matcher; built from Elems when nil
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
		pat = compileLike(p.Elems, true)
	}
	return matchLike(pat, s, true)
}

// MatchCase reports whether s matches the whole pattern, case included: the
// LIKE of a unique case-sensitive field ("Comparisons on strings are
// case-sensitive for unique case-sensitive fields", SOQL and SOSL Reference).
func (p *LikePattern) MatchCase(s string) bool {
	pat := p.exact
	if pat == nil {
		pat = compileLike(p.Elems, false)
	}
	return matchLike(pat, s, false)
}

// matchLike is the classic backtracking-on-last-% algorithm over the runes
// of s: O(n*m) in the worst case, never exponential, and allocation-free.
func matchLike(pat []likeRune, s string, fold bool) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		r, size := utf8.DecodeRuneInString(s[si:])
		if fold {
			r = unicode.ToLower(r)
		}
		switch {
		case pi < len(pat) && pat[pi].kind == LikeAny:
			star, mark = pi, si
			pi++
		case pi < len(pat) && (pat[pi].kind == LikeOne || (pat[pi].kind == LikeLiteral && pat[pi].r == r)):
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

// newLikePattern builds a pattern with its matchers precompiled, so a
// pattern shared by concurrent matches is never written to.
func newLikePattern(text string, elems []LikeElem) *LikePattern {
	return &LikePattern{Text: text, Elems: elems, folded: compileLike(elems, true), exact: compileLike(elems, false)}
}

func compileLike(elems []LikeElem, fold bool) []likeRune {
	pat := []likeRune{}
	for _, e := range elems {
		switch e.Kind {
		case LikeAny:
			pat = append(pat, likeRune{kind: LikeAny})
		case LikeOne:
			pat = append(pat, likeRune{kind: LikeOne})
		default:
			for _, r := range e.Text {
				if fold {
					r = unicode.ToLower(r)
				}
				pat = append(pat, likeRune{r: r})
			}
		}
	}
	return pat
}

type likeRune struct {
	kind LikeKind
	r    rune
}
