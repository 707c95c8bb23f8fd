package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// ReconcileAPI is what [Executor.Reconcile] needs of an account's client
// beyond [SalesforceAPI]: the object's field metadata, to know which of the
// job's fields a query may filter on, and the integration user, who created
// the record if an earlier attempt did. *salesforce.Client satisfies it.
type ReconcileAPI interface {
	Describe(ctx context.Context, object string) (*salesforce.DescribeResult, error)
	UserID(ctx context.Context) (string, error)
}

var _ ReconcileAPI = (*salesforce.Client)(nil)

// Reconciliation is what [Executor.Reconcile] found of an earlier attempt.
type Reconciliation struct {
	// ObjectID is the id of the one record that matches; "" when none or
	// several do.
	ObjectID string
	// Candidates are the ids of the records that match when several do:
	// an operator must tell which one (if any) is the job's.
	Candidates []string
	// Conditions is how many of the job's own field values narrowed the
	// search, besides the creator and the time window.
	Conditions int
}

// ClockSkew widens the time window [Executor.Reconcile] searches, on both
// sides, for the difference between the worker's clock (which timed the
// attempt) and Salesforce's (which set CreatedDate).
const ClockSkew = 5 * time.Minute

// maxCandidates bounds the records a reconciliation query returns.
const maxCandidates = 10

// errNotReconcilable: the job is not a plain create, or its account's
// client cannot describe objects.
var errNotReconcilable = errors.New("blocks: this job cannot be reconciled")

// Reconcile looks for the record an earlier attempt of job may have
// created: a job that Creates a record without anything identifying it,
// whose attempt started at from and could no longer land after to (both
// the worker's clock; the window is widened by [ClockSkew]). It queries the
// job's object for records created by the account's integration user in
// that window whose filterable fields equal the job's own values:
//
//	SELECT Id FROM Task WHERE CreatedById = '005...' AND CreatedDate >= ... AND CreatedDate <= ...
//	  AND Subject = 'Call from ...' AND Status = 'Completed' ORDER BY CreatedDate LIMIT 10
//
// One match is the record (ObjectID); several are Candidates; none means
// the attempt created nothing that can be found. Two jobs with equal values
// in the same window cannot be told apart: they show up as candidates of
// each other, which is why an account's idempotency field, when configured,
// makes every create an upsert that never needs reconciling. Errors are
// those of the Salesforce calls, classified as by [AsError].
func (e *Executor) Reconcile(ctx context.Context, job *Job, from, to time.Time) (rec Reconciliation, err error) {
	defer func() {
		// A panicking SalesforceAPI must not take the worker down with it,
		// here any more than in Run; the value may quote the job's data.
		if p := recover(); p != nil {
			rec, err = Reconciliation{}, &sfblocks.Error{Code: sfblocks.CodeInternal,
				Message: "internal error while reconciling the job (a bug in sfblocks; the worker keeps running)",
				Err:     fmt.Errorf("panic: %v", p)}
		}
	}()
	if job == nil || !job.Creates() {
		return Reconciliation{}, errNotReconcilable
	}
	api, ok := job.acct.API.(ReconcileAPI)
	if !ok {
		return Reconciliation{}, fmt.Errorf("%w: account %q's client cannot describe objects", errNotReconcilable, job.acct.Name)
	}
	// Not the job's own timeout: a job that asked for 50 ms must still be
	// reconciled, however slow Salesforce is today.
	ctx, cancel := context.WithTimeout(ctx, max(job.Timeout, e.defaultTimeout))
	defer cancel()
	// The creator narrows the search when the token names it; a token
	// without an identity URL leaves the time window and the values.
	user, err := api.UserID(ctx)
	if err != nil && !errors.Is(err, salesforce.ErrNoIdentity) {
		return Reconciliation{}, AsError(err)
	}
	fields, err := e.describe(ctx, job.acct.Name, api, job.object)
	if err != nil {
		return Reconciliation{}, AsError(err)
	}
	var b strings.Builder
	b.WriteString("SELECT Id FROM ")
	b.WriteString(job.object)
	b.WriteString(" WHERE ")
	if user != "" {
		b.WriteString("CreatedById = '")
		b.WriteString(salesforce.EscapeSOQLString(user))
		b.WriteString("' AND ")
	}
	b.WriteString("CreatedDate >= ")
	b.WriteString(from.Add(-ClockSkew).UTC().Format("2006-01-02T15:04:05Z"))
	b.WriteString(" AND CreatedDate <= ")
	b.WriteString(to.Add(ClockSkew).UTC().Format("2006-01-02T15:04:05Z"))
	conds := 0
	names := make([]string, 0, len(job.fields))
	for name := range job.fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f, ok := fields[strings.ToLower(name)]
		if !ok || !f.Filterable {
			continue
		}
		lit, ok := soqlLiteral(f, job.fields[name])
		if !ok {
			continue
		}
		b.WriteString(" AND ")
		b.WriteString(f.Name)
		b.WriteString(" = ")
		b.WriteString(lit)
		conds++
	}
	fmt.Fprintf(&b, " ORDER BY CreatedDate LIMIT %d", maxCandidates)
	res, err := job.acct.API.Query(ctx, b.String(), salesforce.MaxRecords(maxCandidates))
	if err != nil {
		return Reconciliation{}, AsError(err)
	}
	out := Reconciliation{Conditions: conds}
	for _, r := range res.Records {
		if id, ok := r["Id"].(string); ok {
			out.Candidates = append(out.Candidates, id)
		}
	}
	if len(out.Candidates) == 1 {
		out.ObjectID, out.Candidates = out.Candidates[0], nil
	}
	return out, nil
}

// soqlLiteral writes v as the SOQL literal of field f, when an equality on
// it is safe: the value is stored as sent, so the record an earlier attempt
// saved compares equal. Types Salesforce may round or reformat (decimals,
// currency, datetimes) and types SOQL does not compare with = are left out:
// a condition that cannot hold would hide the record.
func soqlLiteral(f salesforce.DescribeField, v any) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "null", true
	case bool:
		if f.Type != "boolean" {
			return "", false
		}
		if t {
			return "TRUE", true
		}
		return "FALSE", true
	case string:
		switch f.Type {
		case "string", "email", "phone", "url", "picklist", "combobox", "reference", "id", "textarea":
			if len(t) > 255 {
				return "", false
			}
			return "'" + salesforce.EscapeSOQLString(t) + "'", true
		case "date":
			if !isDate(t) {
				return "", false
			}
			return t, true
		}
	case json.Number:
		if f.Type == "int" && isSOQLNumber(t.String()) && !strings.Contains(t.String(), ".") {
			return t.String(), true
		}
	}
	return "", false
}

// describeTTL is how long an object's field metadata is reused.
const describeTTL = time.Hour

type describeEntry struct {
	fields  map[string]salesforce.DescribeField // by lower-case name
	fetched time.Time
}

// describe returns object's fields for account, from the executor's cache
// when fresh.
func (e *Executor) describe(ctx context.Context, account string, api ReconcileAPI, object string) (map[string]salesforce.DescribeField, error) {
	key := account + "/" + strings.ToLower(object)
	if v, ok := e.describes.Load(key); ok {
		if d := v.(*describeEntry); e.now().Sub(d.fetched) < describeTTL {
			return d.fields, nil
		}
	}
	res, err := api.Describe(ctx, object)
	if err != nil {
		return nil, err
	}
	d := &describeEntry{fields: make(map[string]salesforce.DescribeField, len(res.Fields)), fetched: e.now()}
	for _, f := range res.Fields {
		d.fields[strings.ToLower(f.Name)] = f
	}
	e.describes.Store(key, d)
	return d.fields, nil
}

// describeCache is the part of an Executor that remembers objects' fields.
type describeCache struct {
	describes sync.Map // account/object → *describeEntry
}
