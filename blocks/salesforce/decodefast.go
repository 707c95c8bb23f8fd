package salesforce

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/sfblocks/sfblocks/blocks/internal/jsonscan"
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
	p := valueParser{jsonscan.Scanner{B: data}}
	p.WS()
	if !p.Byte('{') {
		return false
	}
	var seen uint8
	p.WS()
	if p.Byte('}') {
		return true
	}
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
		var bit uint8
		switch key {
		case "totalSize":
			bit = 1
			var n int64
			n, ok = p.Integer()
			page.TotalSize = int(n)
		case "done":
			bit = 2
			switch {
			case p.Literal("true"):
				page.Done = true
			case p.Literal("false"):
				page.Done = false
			default:
				ok = false
			}
		case "nextRecordsUrl":
			bit = 4
			page.NextRecordsURL, ok = p.Str()
		case "records":
			bit = 8
			if p.Peek() != '[' {
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
		p.WS()
		if p.Byte(',') {
			p.WS()
			continue
		}
		return p.Byte('}')
	}
}

// valueParser reads JSON values as encoding/json decodes them into an any
// with UseNumber, giving up on what the fast path leaves to it.
type valueParser struct{ jsonscan.Scanner }

// maxFastDepth bounds nesting; deeper values go to encoding/json.
const maxFastDepth = 64

// value reads any JSON value.
func (p *valueParser) value(depth int) (any, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	switch c := p.Peek(); {
	case c == '"':
		return p.Str()
	case c == '{':
		p.I++
		m := make(map[string]any)
		p.WS()
		if p.Byte('}') {
			return m, true
		}
		for {
			k, ok := p.Str()
			if !ok {
				return nil, false
			}
			p.WS()
			if !p.Byte(':') {
				return nil, false
			}
			p.WS()
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v
			p.WS()
			if p.Byte(',') {
				p.WS()
				continue
			}
			return m, p.Byte('}')
		}
	case c == '[':
		p.I++
		a := []any{}
		p.WS()
		if p.Byte(']') {
			return a, true
		}
		for {
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			a = append(a, v)
			p.WS()
			if p.Byte(',') {
				p.WS()
				continue
			}
			return a, p.Byte(']')
		}
	case c == '-' || c >= '0' && c <= '9':
		s, ok := p.Number()
		return json.Number(s), ok
	case p.Literal("true"):
		return true, true
	case p.Literal("false"):
		return false, true
	case p.Literal("null"):
		return nil, true
	}
	return nil, false
}
