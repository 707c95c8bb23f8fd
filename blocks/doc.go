// Package blocks says what sfblocks' scenario blocks mean: it turns a job
// received by the worker into a Salesforce call and its answer into a reply.
// It sits between worker/ (NATS: delivery, retries, dead letters) and
// blocks/salesforce (the REST client), and follows Bright Pattern's
// "Salesforce.com Search" and "Salesforce.com Insert" blocks, safer where
// they are weak.
//
// # The flow
//
// An [Executor] does one job in two steps. [Executor.Decode] parses and
// validates the job and builds its statement or record, without calling
// Salesforce; a bad job gives an *[sfblocks.Error] with [sfblocks.CodeInvalidRequest] whose
// message names the key at fault. [Executor.Run] picks the account's client
// through [Accounts], calls Salesforce under the job's deadline and returns
// a [sfblocks.Reply] (never nil). [Executor.Handle] does both.
//
//	ex, _ := blocks.NewExecutor(blocks.StaticAccounts{Default: "main",
//		Clients: map[string]blocks.SalesforceAPI{"main": client}})
//	reply := ex.Handle(ctx, sfblocks.Search, payload) // JSON-encode and send back
//
// # Search
//
// A search job carries a SOQL or SOSL statement (language "soql", the
// default, or "sosl") in which scenario variables are written $(name) and
// given in variables:
//
//	{"query": "SELECT Id, Name FROM Contact WHERE Phone = '$(ani)'",
//	 "variables": {"ani": "+1 415 555 0100"}, "max_records": 5}
//
// Bright Pattern pastes values in as text, so a value holding a quote
// rewrites the statement. sfblocks escapes each value for the place it
// stands in:
//
//   - inside a string literal '...$(x)...': quotes, backslashes and control
//     characters are escaped ([salesforce.EscapeSOQLString]);
//   - inside the literal of a LIKE comparison: % and _ of the value are
//     escaped too, so the value matches literally, while the template's own
//     % and _ stay wildcards: Name LIKE '$(prefix)%'
//     ([salesforce.EscapeSOQLLike]);
//   - inside the braces of a SOSL FIND {...}: the search operators are
//     escaped ([salesforce.EscapeSOSL]); a literal in a SOSL WHERE clause
//     is escaped as in SOQL;
//   - outside quotes: only a number (42, -1.5), a date (2024-01-31), a
//     datetime (2024-01-31T09:00:00Z or with +hh:mm) or a boolean is
//     accepted; any other value is refused with INVALID_REQUEST naming the
//     variable, never pasted in.
//
// A variable the statement uses but variables lacks is refused naming it;
// "$$(" writes a literal "$(". Values are never rescanned, so a value
// holding "$(other)" stays text.
//
// Callers who do not write SOQL use the structured form instead of query:
//
//	{"object": "Contact", "fields": ["Id", "Name", "Account.Name"],
//	 "where": [{"field": "Email", "op": "=", "value": "$(email)"},
//	           {"field": "MailingCity", "op": "not_empty"}],
//	 "order_by": "LastName DESC", "limit": 10, "variables": {"email": "ada@example.com"}}
//
// Names are checked with [salesforce.ValidAPIName] (each segment of a
// relationship path); ops are = != < > <= >= LIKE IN empty not_empty; string
// values are quoted and escaped, numbers and booleans written as such, and
// "type": "date" or "datetime" writes a date string unquoted. In a LIKE
// value the caller's % and _ are wildcards; \% and \_ match them literally.
//
// The reply's status is ok (records found), no_data (none) or failed. It
// holds count, records (Salesforce's "attributes" removed, also from nested
// relationship records), first (the first record) and truncated (more
// records matched than max_records). max_records defaults to 200 and is at
// most 2000; further pages (nextRecordsUrl) are fetched up to it.
//
// # Insert
//
// An insert job creates one record of object from fields. String values may
// hold $(name), replaced by the variable's text (no escaping is needed: the
// record travels as JSON); a value that is exactly "$(name)" takes the
// variable's type, so a number stays a number. With external_id the job
// upserts instead: the record whose external ID field has that value is
// updated, or created when there is none, so a redelivered job never makes a
// second record. The reply carries object_id and created (false when an
// upsert updated an existing record).
//
//	{"object": "Case", "fields": {"Subject": "Call from $(caller)", "Origin": "Phone"},
//	 "variables": {"caller": "Ada Byron"},
//	 "external_id": {"field": "External_Id__c", "value": "call-$(call_id)"}}
//
// # Validation and limits
//
// Before any Salesforce call: the job is at most 1 MiB ([WithMaxJobBytes]),
// valid UTF-8, one JSON object with no unknown keys and nothing after it;
// keys have the right JSON type ("field \"max_records\" must be a whole
// number"); at most 200 fields, 1000 variables of at most 32 KiB each, a
// statement of at most 100,000 characters (Salesforce's SOQL limit);
// timeout_ms at most the executor's maximum (5 minutes). The JSON Schemas in
// package [github.com/sfblocks/sfblocks/blocks/schema] describe the same
// jobs and replies.
//
// # Failures
//
// A failed reply carries error {code, message, salesforce_code, retryable}
// and, when Salesforce answered, result_code (its HTTP status) and
// result_body (its raw answer), as Bright Pattern's integrationResultCode
// and integrationResultBody. The code is stable (see [sfblocks.Code]); the message
// says what to do and never holds a secret or a record value (Salesforce's
// own message, which may quote values, is only in result_body). [AsError]
// is the one place errors are classified:
//
//	SALESFORCE_ERROR        Salesforce refused (salesforce_code says why); not retryable,
//	                        except UNABLE_TO_LOCK_ROW
//	SALESFORCE_UNAVAILABLE  5xx, network, token endpoint down; retryable
//	RATE_LIMITED            org API limit exhausted; retryable later
//	AUTH_FAILED             authorization revoked or session rejected; not retryable
//	TIMEOUT                 the job's deadline passed; retryable
//	UNKNOWN_ACCOUNT, INVALID_REQUEST, INTERNAL; not retryable
//
// Token source errors are recognised without importing package auth: an
// error in the chain with an ErrorCode() string method ([CodedError]) is
// sorted by that code.
//
// Each job has a deadline, timeout_ms or the executor's default (30 s),
// that bounds all of its Salesforce calls, paging included. An insert that
// timed out may still have been saved; retry inserts with external_id.
package blocks
