package blocks

// Limits on a job, checked before any Salesforce call.
const (
	// DefaultMaxJobBytes is the default limit on a job's size.
	DefaultMaxJobBytes = 1 << 20
	// MaxFields is the most fields an Insert sets or a structured search
	// selects.
	MaxFields = 200
	// MaxVariables is the most variables a job carries.
	MaxVariables = 1000
	// MaxVariableBytes is the largest variable value.
	MaxVariableBytes = 32 << 10
	// MaxQueryChars is the longest statement, Salesforce's SOQL limit.
	MaxQueryChars = 100_000
	// MaxConditions is the most where conditions of a structured search.
	MaxConditions = 200
	// MaxInValues is the most values of one IN condition.
	MaxInValues = 1000
	// DefaultMaxRecords is the default of max_records.
	DefaultMaxRecords = 200
	// MaxRecordsLimit is the largest max_records.
	MaxRecordsLimit = 2000
	maxIDLen        = 128
)
