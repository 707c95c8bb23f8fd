package blocks

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// prepareInsert validates an insert request and builds the record to send.
func prepareInsert(job *Job, r *sfblocks.InsertRequest) error {
	if r.Object == "" {
		return invalidf("object is required: the sObject to create, such as Contact or Case")
	}
	if !salesforce.ValidAPIName(r.Object) {
		return invalidf("object %s is not a valid API name (use the API name, such as Contact or My_Object__c)", quoteName(r.Object))
	}
	if r.Fields == nil {
		return invalidf("fields is required: an object of field API names to values ({} for none)")
	}
	if len(r.Fields) > MaxFields {
		return invalidf("fields has %d entries; the limit is %d", len(r.Fields), MaxFields)
	}
	vars, err := parseVariables(r.Variables)
	if err != nil {
		return err
	}
	job.object = r.Object

	if r.ExternalID != nil {
		x := r.ExternalID
		if !salesforce.ValidAPIName(x.Field) {
			return invalidf("external_id.field %s is not a valid API name (such as External_Id__c)", quoteName(x.Field))
		}
		v, err := substituteText(x.Value, vars, "external_id.value")
		if err != nil {
			return err
		}
		if v == "" {
			return invalidf("external_id.value is empty; an upsert needs the external ID's value")
		}
		job.extField, job.extValue = x.Field, v
	}

	// Sorted, so that of several bad fields the message always names the
	// same one.
	names := make([]string, 0, len(r.Fields))
	for name := range r.Fields {
		names = append(names, name)
	}
	slices.Sort(names)
	job.fields = make(map[string]any, len(r.Fields))
	for i, name := range names {
		if !salesforce.ValidAPIName(name) {
			return invalidf("field name %s is not a valid API name (such as LastName or My_Field__c)", quoteName(name))
		}
		if strings.EqualFold(name, "Id") {
			return invalidf("field Id cannot be set: Salesforce assigns it (to update an existing record, use external_id)")
		}
		// API names are case-insensitive: two spellings are one field.
		if i > 0 && strings.EqualFold(names[i-1], name) {
			return invalidf("field %s is given twice (as %s and %s)", quoteName(name), quoteName(names[i-1]), quoteName(name))
		}
		where := "field " + quoteName(name)
		v, err := resolveValue(r.Fields[name], vars, where)
		if err != nil {
			return err
		}
		switch t := v.(type) {
		case nil, string, bool:
		case json.Number:
			if !isJSONNumberPlain(t) {
				return invalidf("%s must be a plain number such as 42 or -1.5", where)
			}
		default:
			return invalidf("%s must be a string, number, boolean or null", where)
		}
		if job.extField != "" && strings.EqualFold(name, job.extField) {
			// The external ID travels in the URL; a different value in the
			// body would silently change it.
			if s, ok := v.(string); !ok || s != job.extValue {
				return invalidf("field %s is also external_id.field with another value; give the external ID only in external_id", quoteName(name))
			}
			continue
		}
		job.fields[name] = v
	}
	return nil
}

// isJSONNumberPlain reports whether n is a number Salesforce's JSON parser
// takes for any numeric field: no exponent.
func isJSONNumberPlain(n json.Number) bool {
	return isSOQLNumber(n.String())
}

// runInsert creates, or upserts, a prepared record: with the account's
// other Inserts of the moment when coalescing is on.
func (e *Executor) runInsert(ctx context.Context, acct Account, job *Job) (*sfblocks.Reply, error) {
	var (
		res *salesforce.SaveResult
		err error
	)
	// Searches that begin from now on do not share a call that may have
	// begun before this record existed.
	defer e.generation(acct.Name).Add(1)
	switch c := e.coalescerFor(acct); {
	case c != nil:
		res, err = c.save(ctx, &saveReq{object: job.object, extField: job.extField, extValue: job.extValue, fields: job.fields})
	case job.extField != "":
		res, err = acct.API.Upsert(ctx, job.object, job.extField, job.extValue, job.fields)
	default:
		res, err = acct.API.Create(ctx, job.object, job.fields)
	}
	if err != nil {
		return nil, err
	}
	if !res.Success {
		// Salesforce reports record errors with a 2xx status only in
		// collections, but a save answer can still say success false.
		e := &sfblocks.Error{Code: sfblocks.CodeSalesforceError, Message: "Salesforce did not save the record"}
		if len(res.Errors) > 0 {
			re := res.Errors[0]
			e.SalesforceCode = re.StatusCode
			e.Message = "Salesforce did not save the record (" + re.StatusCode + ")"
			if len(re.Fields) > 0 {
				e.Message += "; fields: " + strings.Join(re.Fields, ", ")
			}
			if body, merr := json.Marshal(res); merr == nil {
				e.ResultBody = string(body)
			}
		}
		return nil, e
	}
	created := res.Created
	return &sfblocks.Reply{Status: sfblocks.StatusOK, ObjectID: res.ID, Created: &created}, nil
}
