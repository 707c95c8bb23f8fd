// Package soql parses the subset of SOQL and SOSL that the Salesforce
// simulator (sfsim) understands, and reports syntax errors the way the
// Salesforce REST API does (MALFORMED_QUERY / MALFORMED_SEARCH with the
// statement, a caret line and "ERROR at Row:R:Column:C").
//
// It owns only syntax: [Parse] turns a SELECT statement into a [Query] and
// [ParseSearch] turns a FIND statement into a [Search]. Resolving field and
// object names against a schema, checking literal types and evaluating a
// WHERE clause against records is done by package simdb, which builds its
// positioned errors with [NewError] so they read the same.
//
// The parsed form is deliberately inspectable: a [Comparison] carries its
// unescaped [Literal] (and, for LIKE, the [LikePattern]); a [SearchTerm]
// carries the unescaped search text. The escape round-trip fuzz tests rely on
// that to prove that blocks/salesforce's escape helpers cannot be broken out
// of.
//
// Nothing in this package panics on input; every failure is an [*Error].
package soql
