package salesforce

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeQueryPageFast decodes a query page without reflection when it has
// the shape Salesforce answers with: the four members spelled exactly, each
// once and none null, no escape in any string, valid UTF-8. It reports
// false for anything else, and the caller decodes with encoding/json. When
// it reports true, page is exactly what decodeJSON (json.Decoder with
// UseNumber: the first value, whatever follows it) would have decoded;
// FuzzDecodeQueryPageFast holds it to that.
//
// encoding/json's reflection was the largest part of a search's CPU in
// sfblocks' own code.
func decodeQueryPageFast(data []byte, page *queryPage) bool {
	if bytes.IndexByte(data, '\\') >= 0 || !utf8.Valid(data) {
		return false
	}
	p := valueParser{b: data}
	p.ws()
	if !p.byte('{') {
		return false
	}
	var seen uint8
	p.ws()
	if p.byte('}') {
		return true
	}
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
		var bit uint8
		switch key {
		case "totalSize":
			bit = 1
			var n int64
			n, ok = p.integer()
			page.TotalSize = int(n)
		case "done":
			bit = 2
			switch {
			case p.literal("true"):
				page.Done = true
			case p.literal("false"):
				page.Done = false
			default:
				ok = false
			}
		case "nextRecordsUrl":
			bit = 4
			page.NextRecordsURL, ok = p.str()
		case "records":
			bit = 8
			if p.peek() != '[' {
				return false
			}
			var v any
			v, ok = p.value(0)
			page.Records, _ = v.([]any)
		default:
			// encoding/json matches struct members case-insensitively and
			// skips the others.
			for _, k := range [...]string{"totalSize", "done", "nextRecordsUrl", "records"} {
				if strings.EqualFold(key, k) {
					return false
				}
			}
			_, ok = p.value(0)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		p.ws()
		if p.byte(',') {
			p.ws()
			continue
		}
		return p.byte('}')
	}
}

// valueParser reads JSON values as encoding/json decodes them into an any
// with UseNumber, giving up on what the fast path leaves to it.
type valueParser struct {
	b []byte
	i int
}

// maxFastDepth bounds nesting; deeper values go to encoding/json.
const maxFastDepth = 64

func (p *valueParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *valueParser) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *valueParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *valueParser) literal(word string) bool {
	if len(p.b)-p.i >= len(word) && string(p.b[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	return false
}

// str reads a string holding no escape or control character.
func (p *valueParser) str() (string, bool) {
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

// number reads a JSON number's text.
func (p *valueParser) number() (string, bool) {
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

func (p *valueParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// integer reads plain digits, at most 9 of them: what an int holds on
// any platform.
func (p *valueParser) integer() (int64, bool) {
	s, ok := p.number()
	if !ok {
		return 0, false
	}
	d := strings.TrimPrefix(s, "-")
	if len(d) > 9 || strings.ContainsAny(d, ".eE") {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// value reads any JSON value.
func (p *valueParser) value(depth int) (any, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	switch c := p.peek(); {
	case c == '"':
		return p.str()
	case c == '{':
		p.i++
		m := make(map[string]any)
		p.ws()
		if p.byte('}') {
			return m, true
		}
		for {
			k, ok := p.str()
			if !ok {
				return nil, false
			}
			p.ws()
			if !p.byte(':') {
				return nil, false
			}
			p.ws()
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v
			p.ws()
			if p.byte(',') {
				p.ws()
				continue
			}
			return m, p.byte('}')
		}
	case c == '[':
		p.i++
		a := []any{}
		p.ws()
		if p.byte(']') {
			return a, true
		}
		for {
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			a = append(a, v)
			p.ws()
			if p.byte(',') {
				p.ws()
				continue
			}
			return a, p.byte(']')
		}
	case c == '-' || c >= '0' && c <= '9':
		s, ok := p.number()
		return json.Number(s), ok
	case p.literal("true"):
		return true, true
	case p.literal("false"):
		return false, true
	case p.literal("null"):
		return nil, true
	}
	return nil, false
}
