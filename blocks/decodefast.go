package blocks

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/sfblocks/sfblocks"
)

// decodeSearchFast decodes the common shape of a search job without
// reflection: a templated or simple structured search whose keys are
// spelled exactly, whose strings hold no escape, and whose values are never
// null. It reports false for anything else (where, order_by, an escape, a
// duplicate key, a number that is not a plain integer where an integer
// goes, ...), and the caller decodes with encoding/json, which also says
// what is wrong. When it reports true, r is exactly what decodeJob's
// json.Decoder (unknown keys refused, numbers kept as json.Number, nothing
// after the object) would have decoded; FuzzDecodeSearchFast holds it to
// that.
//
// Job decoding was about a tenth of a search job's CPU in the worker, most
// of it encoding/json's reflection.
func decodeSearchFast(data []byte, r *sfblocks.SearchRequest) bool {
	// What it would give up on half-way, found at the cost of a scan.
	if bytes.IndexByte(data, '\\') >= 0 || bytes.Contains(data, []byte(`"where"`)) || bytes.Contains(data, []byte(`"order_by"`)) {
		return false
	}
	p := fastParser{b: data}
	p.ws()
	if !p.byte('{') {
		return false
	}
	var seen uint16
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			key, ok := p.str()
			if !ok {
				return false
			}
			p.ws()
			if !p.byte(':') {
				return false
			}
			p.ws()
			bit, ok := p.member(key, r)
			if !ok || seen&bit != 0 {
				return false
			}
			seen |= bit
			p.ws()
			if p.byte(',') {
				p.ws()
				continue
			}
			if !p.byte('}') {
				return false
			}
			break
		}
	}
	p.ws()
	return p.i == len(p.b)
}

// fastParser reads the JSON of decodeSearchFast.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// byte consumes c when it is next.
func (p *fastParser) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// ws skips JSON whitespace.
func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// str reads a string without escapes or control characters (the payload
// is known to be valid UTF-8).
func (p *fastParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

// member reads the value of key into r, returning the key's bit among
// the members read (to refuse a duplicate).
func (p *fastParser) member(key string, r *sfblocks.SearchRequest) (uint16, bool) {
	var ok bool
	switch key {
	case "id":
		r.ID, ok = p.str()
		return 1 << 0, ok
	case "account":
		r.Account, ok = p.str()
		return 1 << 1, ok
	case "timeout_ms":
		r.TimeoutMS, ok = p.integer()
		return 1 << 2, ok
	case "language":
		r.Language, ok = p.str()
		return 1 << 3, ok
	case "query":
		r.Query, ok = p.str()
		return 1 << 4, ok
	case "variables":
		r.Variables, ok = p.variables()
		return 1 << 5, ok
	case "max_records":
		var n int64
		n, ok = p.integer()
		r.MaxRecords = int(n)
		return 1 << 6, ok
	case "object":
		r.Object, ok = p.str()
		return 1 << 7, ok
	case "fields":
		r.Fields, ok = p.strings()
		return 1 << 8, ok
	case "limit":
		var n int64
		n, ok = p.integer()
		r.Limit = int(n)
		return 1 << 9, ok
	}
	return 0, false
}

// number reads a JSON number's text.
func (p *fastParser) number() (string, bool) {
	start := p.i
	p.byte('-')
	switch {
	case p.byte('0'):
	case p.digits() == 0:
		return "", false
	}
	if p.byte('.') && p.digits() == 0 {
		return "", false
	}
	if p.byte('e') || p.byte('E') {
		if !p.byte('+') {
			p.byte('-')
		}
		if p.digits() == 0 {
			return "", false
		}
	}
	return string(p.b[start:p.i]), true
}

func (p *fastParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// integer reads a number that encoding/json stores in an int without
// complaint on a 64-bit or 32-bit platform: plain digits, at most 9 of
// them.
func (p *fastParser) integer() (int64, bool) {
	s, ok := p.number()
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

// variables reads an object of strings, numbers and booleans, as
// encoding/json fills a map[string]any with UseNumber.
func (p *fastParser) variables() (map[string]any, bool) {
	if !p.byte('{') {
		return nil, false
	}
	m := make(map[string]any)
	p.ws()
	if p.byte('}') {
		return m, true
	}
	for {
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		if _, dup := m[key]; dup {
			return nil, false
		}
		p.ws()
		if !p.byte(':') {
			return nil, false
		}
		p.ws()
		var v any
		switch c := p.peek(); {
		case c == '"':
			v, ok = p.str()
		case c == '-' || c >= '0' && c <= '9':
			var s string
			s, ok = p.number()
			v = json.Number(s)
		case p.literal("true"):
			v, ok = true, true
		case p.literal("false"):
			v, ok = false, true
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
		m[key] = v
		p.ws()
		if p.byte(',') {
			p.ws()
			continue
		}
		return m, p.byte('}')
	}
}

// literal consumes word when it is next.
func (p *fastParser) literal(word string) bool {
	if len(p.b)-p.i >= len(word) && string(p.b[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	return false
}

// strings reads an array of strings.
func (p *fastParser) strings() ([]string, bool) {
	if !p.byte('[') {
		return nil, false
	}
	out := []string{}
	p.ws()
	if p.byte(']') {
		return out, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		p.ws()
		if p.byte(',') {
			p.ws()
			continue
		}
		return out, p.byte(']')
	}
}
