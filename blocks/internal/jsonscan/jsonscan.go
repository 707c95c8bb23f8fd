// Package jsonscan reads the few JSON shapes that the fast decoders of
// blocks (search jobs) and blocks/salesforce (query pages) accept without
// reflection. It only ever says "not this shape": each decoder then falls
// back to encoding/json, which stays the reference its fuzz test holds the
// fast path to.
package jsonscan

import "strconv"

// Scanner reads B from I. Its methods report false on anything outside
// the shapes they read, leaving I wherever it stopped.
type Scanner struct {
	B []byte
	I int
}

// Peek returns the next byte, or 0 at the end.
func (p *Scanner) Peek() byte {
	if p.I < len(p.B) {
		return p.B[p.I]
	}
	return 0
}

// Byte consumes c when it is next.
func (p *Scanner) Byte(c byte) bool {
	if p.Peek() == c {
		p.I++
		return true
	}
	return false
}

// WS skips JSON whitespace.
func (p *Scanner) WS() {
	for p.I < len(p.B) {
		switch p.B[p.I] {
		case ' ', '\t', '\n', '\r':
			p.I++
		default:
			return
		}
	}
}

// Literal consumes word when it is next.
func (p *Scanner) Literal(word string) bool {
	if len(p.B)-p.I >= len(word) && string(p.B[p.I:p.I+len(word)]) == word {
		p.I += len(word)
		return true
	}
	return false
}

// Str reads a string without escapes or control characters. Its bytes
// are taken as they are: callers check that the input is valid UTF-8.
func (p *Scanner) Str() (string, bool) {
	if !p.Byte('"') {
		return "", false
	}
	start := p.I
	for p.I < len(p.B) {
		switch c := p.B[p.I]; {
		case c == '"':
			s := string(p.B[start:p.I])
			p.I++
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		}
		p.I++
	}
	return "", false
}

// Number reads a JSON number's text.
func (p *Scanner) Number() (string, bool) {
	start := p.I
	p.Byte('-')
	switch {
	case p.Byte('0'):
	case p.digits() == 0:
		return "", false
	}
	if p.Byte('.') && p.digits() == 0 {
		return "", false
	}
	if p.Byte('e') || p.Byte('E') {
		if !p.Byte('+') {
			p.Byte('-')
		}
		if p.digits() == 0 {
			return "", false
		}
	}
	return string(p.B[start:p.I]), true
}

func (p *Scanner) digits() int {
	n := 0
	for p.I < len(p.B) && p.B[p.I] >= '0' && p.B[p.I] <= '9' {
		p.I++
		n++
	}
	return n
}

// Integer reads a number that encoding/json stores in an int without
// complaint on a 64-bit or 32-bit platform: plain digits, at most 9 of
// them.
func (p *Scanner) Integer() (int64, bool) {
	s, ok := p.Number()
	if !ok {
		return 0, false
	}
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) > 9 {
		return 0, false
	}
	for i := range len(digits) {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
