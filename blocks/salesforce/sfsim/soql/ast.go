package soql

import (
	"strings"
	"time"
)

// Query is a parsed SOQL SELECT statement. Names are as written; simdb
// resolves them case-insensitively against its schema.
type Query struct {
	Stmt      string     // the statement as submitted
	Count     bool       // SELECT COUNT()
	CountPos  Pos        // position of COUNT when Count
	Fields    []FieldRef // select list; empty when Count
	Object    string     // FROM object, as written
	ObjectPos Pos        // position of the object name
	Where     Expr       // nil when there is no WHERE clause
	OrderBy   []OrderItem
	Limit     int  // meaningful when HasLimit
	HasLimit  bool // a LIMIT clause was given
	Offset    int  // 0 when no OFFSET clause
}

// FieldRef is a (possibly dotted) field path such as Name or Account.Owner.Name.
type FieldRef struct {
	Path []string // one element per dotted part, as written
	Pos  Pos      // position of the first part
}

// String joins the path with dots.
func (f FieldRef) String() string { return strings.Join(f.Path, ".") }

// OrderItem is one ORDER BY key. Salesforce's default is ascending with
// nulls first; descending defaults to nulls last.
type OrderItem struct {
	Field      FieldRef
	Desc       bool
	NullsLast  bool // effective null placement after defaults are applied
	NullsGiven bool // NULLS FIRST|LAST was written
}

// Expr is a node of a WHERE condition: *And, *Or, *Not or *Comparison.
type Expr interface{ exprNode() }

// And is a conjunction of two or more conditions.
type And struct{ Terms []Expr }

// Or is a disjunction of two or more conditions.
type Or struct{ Terms []Expr }

// Not negates a condition.
type Not struct{ X Expr }

// Op is a comparison operator.
type Op int

// Comparison operators. OpNe covers both != and <>.
const (
	OpEq Op = iota
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpLike
	OpIn
	OpNotIn
)

var opNames = [...]string{"=", "!=", "<", "<=", ">", ">=", "LIKE", "IN", "NOT IN"}

// String is the operator as SOQL spells it.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// Comparison is "field op value", "field LIKE pattern" or
// "field [NOT] IN (values)".
type Comparison struct {
	Field   FieldRef
	Op      Op
	OpPos   Pos
	Value   Literal      // for every operator but IN / NOT IN
	Values  []Literal    // for IN / NOT IN
	Pattern *LikePattern // for LIKE: the parsed pattern (Value.Str is its Text)
}

func (*And) exprNode()        {}
func (*Or) exprNode()         {}
func (*Not) exprNode()        {}
func (*Comparison) exprNode() {}

// Kind is the lexical type of a literal.
type Kind int

// Literal kinds. KindDateFunc is a relative date literal such as TODAY or
// LAST_N_DAYS:7.
const (
	KindNull Kind = iota
	KindString
	KindNumber
	KindBool
	KindDate
	KindDateTime
	KindDateFunc
)

var kindNames = [...]string{"null", "string", "number", "boolean", "date", "datetime", "date literal"}

// String names the kind for messages.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "?"
}

// Literal is a value in a WHERE clause.
type Literal struct {
	Kind Kind
	Pos  Pos
	Raw  string    // source text of the literal
	Str  string    // KindString: the unescaped text
	Num  float64   // KindNumber
	Bool bool      // KindBool
	Time time.Time // KindDate (UTC midnight) and KindDateTime (UTC)
	Func string    // KindDateFunc: upper-case name, e.g. LAST_N_DAYS
	N    int       // KindDateFunc: the :n argument, 0 when none
}

// DateRange returns the half-open UTC interval [start, end) a relative date
// literal denotes, given the current time. ok is false for literals that are
// not KindDateFunc.
func (l Literal) DateRange(now time.Time) (start, end time.Time, ok bool) {
	if l.Kind != KindDateFunc {
		return time.Time{}, time.Time{}, false
	}
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return today.AddDate(0, 0, n) }
	switch l.Func {
	case "TODAY":
		return today, day(1), true
	case "YESTERDAY":
		return day(-1), today, true
	case "TOMORROW":
		return day(1), day(2), true
	case "LAST_N_DAYS":
		// Salesforce: starts n days ago at 00:00 and includes today.
		return day(-l.N), day(1), true
	case "NEXT_N_DAYS":
		// Salesforce: starts 00:00 of the next day and lasts n days.
		return day(1), day(1 + l.N), true
	}
	return time.Time{}, time.Time{}, false
}

// dateFuncs lists the supported relative date literals and whether they
// take a :n argument.
var dateFuncs = map[string]bool{
	"TODAY": false, "YESTERDAY": false, "TOMORROW": false,
	"LAST_N_DAYS": true, "NEXT_N_DAYS": true,
}
