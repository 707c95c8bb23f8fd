package simdb

import (
	"errors"
	"testing"
)

func codeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestCreateBatchAllOrNoneLeavesNothing(t *testing.T) {
	db := newSeededDB(t)
	before := db.Count("Account")
	res := db.CreateBatch([]BatchRecord{
		{Object: "Account", Fields: map[string]any{"Name": "AON 1", JobIDField: "aon-1"}},
		{Object: "Account", Fields: map[string]any{}},
	}, true, nil)
	if codeOf(res[0].Err) != CodeAllOrNoneRolledBack || codeOf(res[1].Err) != CodeRequiredFieldMissing {
		t.Fatalf("results %+v", res)
	}
	if db.Count("Account") != before {
		t.Fatal("a rolled-back record stayed")
	}
	// Not even queryAll sees it, and its job id is free again.
	all, err := db.Query("SELECT Id FROM Account WHERE Name = 'AON 1'", QueryOptions{IncludeDeleted: true})
	if err != nil || all.TotalSize != 0 {
		t.Fatalf("queryAll after rollback: %v %v", all, err)
	}
	if _, created, err := db.Upsert("Account", JobIDField, "aon-1", map[string]any{"Name": "AON 1"}); err != nil || !created {
		t.Fatalf("job id still taken: %v", err)
	}
}

func TestUpsertBatch(t *testing.T) {
	type want struct {
		code    string
		created bool
	}
	tests := []struct {
		name      string
		allOrNone bool
		records   []map[string]any
		want      []want
		added     int
	}{
		{"create then update", false, []map[string]any{
			{JobIDField: "b-1", "Subject": "one"},
			{JobIDField: "b-2", "Subject": "two"},
		}, []want{{"", true}, {"", true}}, 2},
		{"existing value updates", false, []map[string]any{
			{JobIDField: "seeded", "Subject": "again"},
		}, []want{{"", false}}, 0},
		{"missing value", false, []map[string]any{
			{"Subject": "none"},
			{JobIDField: "b-3", "Subject": "three"},
		}, []want{{CodeMissingArgument, false}, {"", true}}, 1},
		{"duplicate in one batch", false, []map[string]any{
			{JobIDField: "dup", "Subject": "a"},
			{JobIDField: "dup", "Subject": "b"},
			{JobIDField: "DUP", "Subject": "other case, other key"},
		}, []want{{CodeDuplicateValue, false}, {CodeDuplicateValue, false}, {"", true}}, 1},
		{"allOrNone undoes creates and updates", true, []map[string]any{
			{JobIDField: "b-4", "Subject": "four"},
			{JobIDField: "seeded", "Subject": "changed"},
			{JobIDField: "b-5", "Subject": "bad", "CallDurationInSeconds": "long"},
		}, []want{{CodeAllOrNoneRolledBack, false}, {CodeAllOrNoneRolledBack, false}, {CodeJSONParserError, false}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newSeededDB(t)
			if _, err := db.Create("Task", map[string]any{JobIDField: "seeded", "Subject": "seeded"}); err != nil {
				t.Fatal(err)
			}
			before := db.Count("Task")
			res, err := db.UpsertBatch("Task", JobIDField, tt.records, tt.allOrNone, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				if codeOf(res[i].Err) != w.code || res[i].Created != w.created || (w.code == "") == (res[i].ID == "") && w.code != CodeAllOrNoneRolledBack {
					t.Errorf("record %d: %+v, want %+v", i, res[i], w)
				}
			}
			if got := db.Count("Task") - before; got != tt.added {
				t.Errorf("%d records added, want %d", got, tt.added)
			}
			if s, _ := mustQuery(t, db, "SELECT Subject FROM Task WHERE SFBlocks_Job_Id__c = 'seeded'").Records[0].Get("Subject"); tt.allOrNone && s != "seeded" {
				t.Errorf("rolled-back update left Subject %v", s)
			}
		})
	}
}

func TestUpsertBatchRefusesWholeRequest(t *testing.T) {
	db := newSeededDB(t)
	for _, tt := range []struct{ object, field, msg string }{
		{"Nope", JobIDField, "The requested resource does not exist"},
		{"Task", "Subject", "Provided external ID field does not exist or is not accessible: Subject"},
	} {
		_, err := db.UpsertBatch(tt.object, tt.field, []map[string]any{{"Subject": "x"}}, false, nil)
		var e *Error
		if !errors.As(err, &e) || e.Status != 404 || e.Message != tt.msg {
			t.Errorf("%s/%s: %v", tt.object, tt.field, err)
		}
	}
}
