package soql

import (
	"strings"
	"unicode/utf8"
)

// Error codes reported by the parser and by simdb's name resolution. They are
// the errorCode values of the Salesforce REST API.
const (
	CodeMalformedQuery  = "MALFORMED_QUERY"
	CodeMalformedSearch = "MALFORMED_SEARCH"
	CodeInvalidField    = "INVALID_FIELD"
	CodeInvalidType     = "INVALID_TYPE"
	CodeInvalidFilterOp = "INVALID_QUERY_FILTER_OPERATOR"
	CodeInvalidSearch   = "INVALID_SEARCH"
)

// Error is a query or search error positioned in the statement. Row and
// Column are 1-based, counted in characters, as Salesforce reports them; they
// are zero when the error has no position (Message is then just Text).
type Error struct {
	Code   string // errorCode, e.g. MALFORMED_QUERY
	Stmt   string // the statement as submitted
	Row    int    // 1-based line of the error; 0 when unpositioned
	Column int    // 1-based character column; 0 when unpositioned
	Text   string // the last line of the message, e.g. "unexpected token: 'FOO'"
}

// Error implements error as "CODE: message".
func (e *Error) Error() string { return e.Code + ": " + e.Message() }

// Message is the message exactly as the Salesforce REST API words it for a
// positioned error:
//
//	"\n<line of the statement>\n<spaces>^\nERROR at Row:R:Column:C\n<Text>"
//
// For an unpositioned error it is Text alone.
func (e *Error) Message() string {
	if e.Row == 0 {
		return e.Text
	}
	lines := strings.Split(e.Stmt, "\n")
	line := ""
	if e.Row-1 < len(lines) {
		line = strings.TrimRight(lines[e.Row-1], "\r")
	}
	var b strings.Builder
	b.WriteByte('\n')
	b.WriteString(line)
	b.WriteByte('\n')
	b.WriteString(strings.Repeat(" ", e.Column-1))
	b.WriteString("^\nERROR at Row:")
	b.WriteString(itoa(e.Row))
	b.WriteString(":Column:")
	b.WriteString(itoa(e.Column))
	b.WriteByte('\n')
	b.WriteString(e.Text)
	return b.String()
}

// Pos is a byte offset into a statement.
type Pos int

// NewError builds a positioned error for stmt at byte offset pos (clamped to
// the statement), computing the row and character column Salesforce reports.
func NewError(code, stmt string, pos Pos, text string) *Error {
	row, col := rowCol(stmt, int(pos))
	return &Error{Code: code, Stmt: stmt, Row: row, Column: col, Text: text}
}

// NewPlainError builds an error without position; its Message is text.
func NewPlainError(code, stmt, text string) *Error {
	return &Error{Code: code, Stmt: stmt, Text: text}
}

func rowCol(stmt string, pos int) (int, int) {
	if pos < 0 {
		pos = 0
	}
	if pos > len(stmt) {
		pos = len(stmt)
	}
	row, col := 1, 1
	for i := 0; i < pos; {
		r, size := utf8.DecodeRuneInString(stmt[i:])
		i += size
		if r == '\n' {
			row++
			col = 1
			continue
		}
		col++
	}
	return row, col
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}
