package blocks

import (
	"strconv"

	"github.com/sfblocks/sfblocks"
)

// Before a job is decoded into Go values, prescan walks its bytes once,
// allocating nothing, and refuses what the limits refuse: too many
// variables, fields, conditions or IN values, a value of the wrong shape
// where only a scalar may stand, an unknown top-level key, or nesting
// deeper than any job needs. Decoding first and checking after would
// materialise all of it: a 1 MiB job of one field holding a 500,000-item
// array cost about 57 MB before it was refused. With the scan, a refused
// job costs its error, and an accepted one costs a small multiple of its
// size (see BenchmarkDecodeLargest).

// maxDepth is the deepest nesting a valid job has: the job object, where,
// a condition, an IN array.
const maxDepth = 4

// scanner reads a job's JSON, already known to be valid UTF-8. It checks
// syntax only as far as it needs to find values' ends; json.Decoder, which
// runs after it, reports syntax errors with their positions.
type scanner struct {
	data []byte
	pos  int
}

// errSyntax stops the scan; the decoder that runs next says what is wrong.
var errSyntax = &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Message: "syntax"}

// prescan checks the job's shape against block's limits. It returns nil
// for a job the decoder should decode (errors of syntax included: the
// decoder words them better), or the *sfblocks.Error refusing it.
func prescan(block sfblocks.Block, data []byte) error {
	s := &scanner{data: data}
	err := s.job(block)
	if err == errSyntax {
		return nil
	}
	return err
}

func (s *scanner) job(block sfblocks.Block) error {
	known := knownKeys[block]
	return s.object(func(key []byte) error {
		k := string(key)
		if !known[k] {
			if u, err := strconv.Unquote(`"` + k + `"`); err == nil {
				k = u
			}
			return invalidf("unknown key %q in the %s job (it takes: %s)", k, block, keysOf[block])
		}
		switch {
		case k == "variables":
			return s.entries("variables", MaxVariables, func(name []byte) error {
				return s.scalar(func() error {
					return invalidf("variable %s must be a string, number or boolean", quoteName(string(name)))
				}, MaxVariableBytes, func(n int) error {
					return invalidf("variable %s is %d bytes; the limit is %d", quoteName(string(name)), n, MaxVariableBytes)
				})
			})
		case k == "fields" && block == sfblocks.Insert:
			return s.entries("fields", MaxFields, func(name []byte) error {
				return s.scalar(func() error {
					return invalidf("field %s must be a string, number, boolean or null", quoteName(string(name)))
				}, 0, nil)
			})
		case k == "fields" && block == sfblocks.Search:
			return s.items("fields", MaxFields, 1, nil)
		case k == "where":
			return s.array("where", MaxConditions, func(c int) error {
				return s.object(func(key []byte) error {
					if string(key) == "value" && s.peek() == '[' {
						return s.items("an IN value", MaxInValues, 3, func(i int) error {
							return invalidf("where[%d].value[%d] must be a string, number or boolean", c, i)
						})
					}
					return s.skip(3)
				})
			})
		}
		return s.skip(1)
	})
}

// knownKeys are the top-level keys each block's job takes.
var knownKeys = map[sfblocks.Block]map[string]bool{
	sfblocks.Search: keySet(keysOf[sfblocks.Search]),
	sfblocks.Insert: keySet(keysOf[sfblocks.Insert]),
}

func keySet(list string) map[string]bool {
	m := map[string]bool{}
	start := 0
	for i := 0; i <= len(list); i++ {
		if i == len(list) || list[i] == ',' {
			k := list[start:i]
			for len(k) > 0 && k[0] == ' ' {
				k = k[1:]
			}
			m[k] = true
			start = i + 1
		}
	}
	return m
}

// entries walks an object of at most limit entries, calling each for the
// value of each key.
func (s *scanner) entries(what string, limit int, each func(key []byte) error) error {
	if s.peek() != '{' {
		return s.skip(1) // the decoder names the wrong type
	}
	n := 0
	err := s.object(func(key []byte) error {
		n++
		if n > limit {
			return s.skip(1)
		}
		return each(key)
	})
	if err == nil && n > limit {
		return invalidf("%s has %d entries; the limit is %d", what, n, limit)
	}
	return err
}

// items walks an array of at most limit scalars (depth is the array's
// own): wrong(i) is the error of an item that is an array or an object;
// nil lets the decoder name it.
func (s *scanner) items(what string, limit, depth int, wrong func(i int) error) error {
	return s.array(what, limit, func(i int) error {
		if c := s.peek(); (c == '{' || c == '[') && wrong != nil {
			return wrong(i)
		}
		return s.skip(depth + 1)
	})
}

// array walks an array of at most limit values, calling each for each.
func (s *scanner) array(what string, limit int, each func(i int) error) error {
	s.ws()
	if s.peek() != '[' {
		return s.skip(1)
	}
	s.pos++
	n := 0
	for {
		s.ws()
		if s.peek() == ']' {
			s.pos++
			if n > limit {
				return invalidf("%s has %d entries; the limit is %d", what, n, limit)
			}
			return nil
		}
		if n > 0 {
			if s.peek() != ',' {
				return errSyntax
			}
			s.pos++
			s.ws()
		}
		n++
		var err error
		if n > limit {
			err = s.skip(maxDepth) // counted, not walked
		} else {
			err = each(n - 1)
		}
		if err != nil {
			return err
		}
	}
}

// object walks an object, calling each with the key (a slice of the job's
// bytes, escapes left in) with the scanner on the value, which each must
// consume.
func (s *scanner) object(each func(key []byte) error) error {
	s.ws()
	if s.peek() != '{' {
		return errSyntax
	}
	s.pos++
	first := true
	for {
		s.ws()
		if s.peek() == '}' {
			s.pos++
			return nil
		}
		if !first {
			if s.peek() != ',' {
				return errSyntax
			}
			s.pos++
			s.ws()
		}
		first = false
		key, ok := s.str()
		if !ok {
			return errSyntax
		}
		s.ws()
		if s.peek() != ':' {
			return errSyntax
		}
		s.pos++
		s.ws()
		if err := each(key); err != nil {
			return err
		}
	}
}

// scalar consumes one value that must be a string, number, boolean or
// null: wrong() is the error of anything else. A string longer than
// maxLen bytes (when maxLen > 0) gives tooLong(its length).
func (s *scanner) scalar(wrong func() error, maxLen int, tooLong func(n int) error) error {
	s.ws()
	switch s.peek() {
	case '{', '[':
		return wrong()
	case '"':
		v, ok := s.str()
		if !ok {
			return errSyntax
		}
		if maxLen > 0 && len(v) > maxLen {
			if n := unquotedLen(v); n > maxLen {
				return tooLong(n)
			}
		}
		return nil
	}
	return s.skip(maxDepth)
}

// skip consumes one value of any kind, refusing nesting deeper than
// maxDepth-depth levels.
func (s *scanner) skip(depth int) error {
	s.ws()
	switch s.peek() {
	case '"':
		if _, ok := s.str(); !ok {
			return errSyntax
		}
		return nil
	case '{', '[':
		if depth >= maxDepth {
			return invalidf("the job nests values deeper than any job needs (at byte %d)", s.pos)
		}
		if s.peek() == '{' {
			return s.object(func([]byte) error { return s.skip(depth + 1) })
		}
		return s.array("an array", int(^uint(0)>>1), func(int) error { return s.skip(depth + 1) })
	}
	// A number or a literal: up to the next delimiter.
	start := s.pos
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			if s.pos == start {
				return errSyntax
			}
			return nil
		}
		s.pos++
	}
	return errSyntax
}

// str consumes a string and returns its raw contents (escapes included).
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.pos++
	start := s.pos
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '\\':
			s.pos += 2
			continue
		case '"':
			v := s.data[start:s.pos]
			s.pos++
			return v, true
		}
		s.pos++
	}
	return nil, false
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// unquotedLen is the length of a raw JSON string once its escapes are
// decoded (the limit is on the value, not on how it was written).
func unquotedLen(raw []byte) int {
	if v, err := strconv.Unquote(`"` + string(raw) + `"`); err == nil {
		return len(v)
	}
	return len(raw)
}
