package blocks

import (
	"bytes"
	"encoding/json"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/internal/jsonscan"
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
	p := fastParser{jsonscan.Scanner{B: data}}
	p.WS()
	if !p.Byte('{') {
		return false
	}
	var seen uint16
	p.WS()
	if p.Peek() == '}' {
		p.I++
	} else {
		for {
			key, ok := p.Str()
			if !ok {
				return false
			}
			p.WS()
			if !p.Byte(':') {
				return false
			}
			p.WS()
			bit, ok := p.member(key, r)
			if !ok || seen&bit != 0 {
				return false
			}
			seen |= bit
			p.WS()
			if p.Byte(',') {
				p.WS()
				continue
			}
			if !p.Byte('}') {
				return false
			}
			break
		}
	}
	p.WS()
	return p.I == len(p.B)
}

// fastParser reads the JSON of decodeSearchFast.
type fastParser struct{ jsonscan.Scanner }

// member reads the value of key into r, returning the key's bit among
// the members read (to refuse a duplicate).
func (p *fastParser) member(key string, r *sfblocks.SearchRequest) (uint16, bool) {
	var ok bool
	switch key {
	case "id":
		r.ID, ok = p.Str()
		return 1 << 0, ok
	case "account":
		r.Account, ok = p.Str()
		return 1 << 1, ok
	case "timeout_ms":
		r.TimeoutMS, ok = p.Integer()
		return 1 << 2, ok
	case "language":
		r.Language, ok = p.Str()
		return 1 << 3, ok
	case "query":
		r.Query, ok = p.Str()
		return 1 << 4, ok
	case "variables":
		r.Variables, ok = p.variables()
		return 1 << 5, ok
	case "max_records":
		var n int64
		n, ok = p.Integer()
		r.MaxRecords = int(n)
		return 1 << 6, ok
	case "object":
		r.Object, ok = p.Str()
		return 1 << 7, ok
	case "fields":
		r.Fields, ok = p.strings()
		return 1 << 8, ok
	case "limit":
		var n int64
		n, ok = p.Integer()
		r.Limit = int(n)
		return 1 << 9, ok
	}
	return 0, false
}

// variables reads an object of strings, numbers and booleans, as
// encoding/json fills a map[string]any with UseNumber.
func (p *fastParser) variables() (map[string]any, bool) {
	if !p.Byte('{') {
		return nil, false
	}
	m := make(map[string]any)
	p.WS()
	if p.Byte('}') {
		return m, true
	}
	for {
		key, ok := p.Str()
		if !ok {
			return nil, false
		}
		if _, dup := m[key]; dup {
			return nil, false
		}
		p.WS()
		if !p.Byte(':') {
			return nil, false
		}
		p.WS()
		var v any
		switch c := p.Peek(); {
		case c == '"':
			v, ok = p.Str()
		case c == '-' || c >= '0' && c <= '9':
			var s string
			s, ok = p.Number()
			v = json.Number(s)
		case p.Literal("true"):
			v, ok = true, true
		case p.Literal("false"):
			v, ok = false, true
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
		m[key] = v
		p.WS()
		if p.Byte(',') {
			p.WS()
			continue
		}
		return m, p.Byte('}')
	}
}

// strings reads an array of strings.
func (p *fastParser) strings() ([]string, bool) {
	if !p.Byte('[') {
		return nil, false
	}
	out := []string{}
	p.WS()
	if p.Byte(']') {
		return out, true
	}
	for {
		s, ok := p.Str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		p.WS()
		if p.Byte(',') {
			p.WS()
			continue
		}
		return out, p.Byte(']')
	}
}
