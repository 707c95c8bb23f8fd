package sfblocks

// Reply is the JSON answer to every job, success or failure.
type Reply struct {
	// ID is the job's id, or the one generated for it.
	ID string `json:"id"`
	// Account is the integration account that ran the job (the default
	// resolved), empty when the job failed before one was chosen.
	Account string `json:"account,omitempty"`
	// Status is [StatusOK], [StatusNoData] or [StatusFailed].
	Status Status `json:"status"`
	// Count is the number of records in Records (search). For SELECT
	// COUNT() queries, which return no records, it is the count.
	Count *int `json:"count,omitempty"`
	// Truncated is true when more records matched than max_records allowed
	// to fetch (search).
	Truncated bool `json:"truncated,omitempty"`
	// Records are the records found (search), Salesforce's "attributes"
	// removed, also from nested relationship records.
	Records []map[string]any `json:"records,omitempty"`
	// First is the first record's fields (search), for scenarios that use
	// only one.
	First map[string]any `json:"first,omitempty"`
	// ObjectID is the Id of the record created or upserted (insert).
	ObjectID string `json:"object_id,omitempty"`
	// Created is false when an upsert updated an existing record (insert).
	Created *bool `json:"created,omitempty"`
	// ResultCode is Salesforce's HTTP status, on failure when Salesforce
	// answered (Bright Pattern's integrationResultCode).
	ResultCode int `json:"result_code,omitempty"`
	// ResultBody is Salesforce's raw answer, on failure when Salesforce
	// answered (Bright Pattern's integrationResultBody).
	ResultBody string `json:"result_body,omitempty"`
	// Error describes the failure when Status is [StatusFailed].
	Error *ErrorInfo `json:"error,omitempty"`
	// DurationMS is how long the job ran, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// Attempt is the delivery attempt (1 for the first), set by the worker.
	Attempt int `json:"attempt"`
	// Err is the classified error behind a failed reply built in process
	// (an *Error whose Err holds the cause chain), so that the worker's
	// retry decision can tell, for example, a call refused by an open
	// circuit breaker from one that may have reached Salesforce. It is
	// never encoded: nil in a decoded reply.
	Err error `json:"-"`
}

// ErrorInfo is the error member of a failed [Reply].
type ErrorInfo struct {
	// Code is the stable code; see the Code* constants.
	Code Code `json:"code"`
	// Message says what went wrong and what to do; never a secret or a
	// record value.
	Message string `json:"message"`
	// SalesforceCode is Salesforce's errorCode, when Salesforce refused.
	SalesforceCode string `json:"salesforce_code,omitempty"`
	// Retryable reports whether sending the job again later may succeed.
	Retryable bool `json:"retryable"`
}

// AsError returns the *[Error] a decoded failed reply stands for (code,
// message, Salesforce's code and answer), so that errors.Is matches its
// code; nil when the reply did not fail.
func (r *Reply) AsError() *Error {
	if r == nil || r.Status != StatusFailed {
		return nil
	}
	e := &Error{Code: CodeInternal, Message: "job failed without error details",
		ResultCode: r.ResultCode, ResultBody: r.ResultBody}
	if r.Error != nil {
		e.Code, e.Message = r.Error.Code, r.Error.Message
		e.SalesforceCode, e.Retryable = r.Error.SalesforceCode, r.Error.Retryable
	}
	return e
}
