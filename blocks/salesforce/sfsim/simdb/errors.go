package simdb

import (
	"errors"
	"net/http"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/soql"
)

// Error codes used by this package, as the Salesforce REST API spells them.
const (
	CodeNotFound                = "NOT_FOUND"
	CodeEntityIsDeleted         = "ENTITY_IS_DELETED"
	CodeInvalidField            = "INVALID_FIELD"
	CodeInvalidType             = "INVALID_TYPE"
	CodeMalformedQuery          = "MALFORMED_QUERY"
	CodeMalformedSearch         = "MALFORMED_SEARCH"
	CodeMalformedID             = "MALFORMED_ID"
	CodeInvalidFieldForInsert   = "INVALID_FIELD_FOR_INSERT_UPDATE"
	CodeRequiredFieldMissing    = "REQUIRED_FIELD_MISSING"
	CodeDuplicateValue          = "DUPLICATE_VALUE"
	CodeJSONParserError         = "JSON_PARSER_ERROR"
	CodeStringTooLong           = "STRING_TOO_LONG"
	CodeInvalidEmail            = "INVALID_EMAIL_ADDRESS"
	CodeInvalidCrossReference   = "INVALID_CROSS_REFERENCE_KEY"
	CodeInvalidFilterOperator   = "INVALID_QUERY_FILTER_OPERATOR"
	CodeNumberOutsideValidRange = "NUMBER_OUTSIDE_VALID_RANGE"
	CodeMultipleChoices         = "MULTIPLE_CHOICES"
	CodeMissingArgument         = "MISSING_ARGUMENT"
	msgNotFound                 = "The requested resource does not exist"
	msgBadExternalID            = "Provided external ID field does not exist or is not accessible: "
)

// Error is a Salesforce REST error as the API reports it: the HTTP status
// and one element of the error array. It matches another *Error with
// errors.Is when the codes are equal, so callers can test
// errors.Is(err, &simdb.Error{Code: simdb.CodeNotFound}).
type Error struct {
	Status  int      // HTTP status: 400, 404, or 300 for an upsert with several matches
	Code    string   // errorCode, e.g. MALFORMED_QUERY
	Message string   // message exactly as Salesforce words it
	Fields  []string // fields concerned (REQUIRED_FIELD_MISSING etc.); nil otherwise
	Matches []string // Status 300 only: URLs of the matching records
}

// Error implements error as "CODE: message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func notFound() *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msgNotFound}
}

func badRequest(code, msg string, fields ...string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg, Fields: fields}
}

// fromSOQL converts a parser error into the REST error shape.
func fromSOQL(err error) error {
	var se *soql.Error
	if errors.As(err, &se) {
		return &Error{Status: http.StatusBadRequest, Code: se.Code, Message: se.Message()}
	}
	return err
}
