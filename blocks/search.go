package blocks

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// prepareSearch validates a search request and builds its statement.
func prepareSearch(job *Job, r *sfblocks.SearchRequest) error {
	switch r.MaxRecords {
	case 0:
		job.maxRecords = DefaultMaxRecords
	default:
		if r.MaxRecords < 0 || r.MaxRecords > MaxRecordsLimit {
			return invalidf("max_records must be between 1 and %d", MaxRecordsLimit)
		}
		job.maxRecords = r.MaxRecords
	}
	vars, err := parseVariables(r.Variables)
	if err != nil {
		return err
	}
	structured := r.Object != "" || len(r.Fields) > 0 || len(r.Where) > 0 || len(r.OrderBy) > 0 || r.Limit != 0
	switch {
	case r.Query != "" && structured:
		return invalidf("give either query or the structured form (object, fields, where, order_by, limit), not both")
	case r.Query == "" && !structured:
		return invalidf("a search needs query (a SOQL or SOSL statement) or object and fields (the structured form)")
	}
	lang := strings.ToLower(r.Language)
	switch lang {
	case "", "soql":
	case "sosl":
		job.sosl = true
		if structured {
			return invalidf("the structured form builds SOQL; drop language sosl or write the SOSL in query")
		}
	default:
		return invalidf("language must be soql or sosl")
	}
	if structured {
		job.statement, err = buildSOQL(r, vars)
		if err != nil {
			return err
		}
		return checkStatementLen(job.statement, "the built query")
	}
	if err := checkStatementLen(r.Query, "query"); err != nil {
		return err
	}
	if err := checkVerb(r.Query, job.sosl); err != nil {
		return err
	}
	job.statement, err = renderStatement(r.Query, job.sosl, vars)
	if err != nil {
		return err
	}
	return checkStatementLen(job.statement, "the query with its variables")
}

func checkStatementLen(s, what string) error {
	if len(s) > MaxQueryChars {
		if n := utf8.RuneCountInString(s); n > MaxQueryChars {
			return invalidf("%s is %d characters; Salesforce's limit is %d", what, n, MaxQueryChars)
		}
	}
	return nil
}

// checkVerb catches a statement sent in the wrong language before
// Salesforce does, with a clearer message.
func checkVerb(q string, sosl bool) error {
	q = strings.TrimLeft(q, " \t\r\n")
	end := 0
	for end < len(q) && isWordByte(q[end]) {
		end++
	}
	verb := q[:end]
	switch {
	case sosl && !strings.EqualFold(verb, "FIND"):
		return invalidf("a SOSL query starts with FIND {...}; for SELECT statements use language soql")
	case !sosl && !strings.EqualFold(verb, "SELECT"):
		if strings.EqualFold(verb, "FIND") {
			return invalidf("a FIND statement is SOSL; set language to sosl")
		}
		return invalidf("a SOQL query starts with SELECT")
	}
	return nil
}

// runSearch runs a prepared search, sharing the call with identical
// searches in flight, and builds its reply.
func (e *Executor) runSearch(ctx context.Context, acct Account, job *Job) (*sfblocks.Reply, error) {
	ans, err := e.shareSearch(ctx, acct.Name, job, func(ctx context.Context) (*searchAnswer, error) {
		return callSearch(ctx, acct.API, job)
	})
	if err != nil {
		return nil, err
	}
	recs, total, truncated := ans.recs, ans.total, ans.truncated
	count := len(recs)
	if count == 0 && total > 0 {
		// SELECT COUNT() answers totalSize and no records.
		count = total
	}
	reply := &sfblocks.Reply{Count: &count, Truncated: truncated && len(recs) > 0}
	if count == 0 {
		reply.Status = sfblocks.StatusNoData
		return reply, nil
	}
	reply.Status = sfblocks.StatusOK
	if len(recs) > 0 {
		reply.Records = make([]map[string]any, len(recs))
		for i, r := range recs {
			reply.Records[i] = r.Fields()
		}
		reply.First = reply.Records[0]
	}
	return reply, nil
}

// callSearch asks Salesforce for a prepared search.
func callSearch(ctx context.Context, api SalesforceAPI, job *Job) (*searchAnswer, error) {
	if job.sosl {
		res, err := api.Search(ctx, job.statement)
		if err != nil {
			return nil, err
		}
		recs := res.SearchRecords
		if len(recs) > job.maxRecords {
			return &searchAnswer{recs: recs[:job.maxRecords], truncated: true}, nil
		}
		return &searchAnswer{recs: recs}, nil
	}
	// Pages of max_records (Salesforce takes 200 to 2000) so that a small
	// max_records does not make Salesforce build a 2000-record page.
	res, err := api.Query(ctx, job.statement,
		salesforce.MaxRecords(job.maxRecords), salesforce.BatchSize(max(job.maxRecords, 200)))
	if err != nil {
		return nil, err
	}
	return &searchAnswer{recs: res.Records, total: res.TotalSize, truncated: !res.Done}, nil
}
