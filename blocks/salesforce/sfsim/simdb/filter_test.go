package simdb

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
)

func TestFilterableFields(t *testing.T) {
	db := New()
	tests := []struct {
		object, field string
		want          bool
	}{
		{"Account", "Description", false},
		{"Contact", "Description", false},
		{"Case", "Description", false},
		{"Lead", "Description", false},
		{"Task", "Description", false}, // labelled "Comments" in the UI
		// A Text Area of 255 is not long text: filterable.
		{"Account", "BillingStreet", true},
		{"Task", "Subject", true},
		{"Task", "Status", true},
		{"Task", "CreatedById", true},
		{"Task", "CreatedDate", true},
		{"Task", JobIDField, true},
	}
	for _, tt := range tests {
		t.Run(tt.object+"."+tt.field, func(t *testing.T) {
			o, err := db.Describe(tt.object)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range o.Fields {
				if f.Name != tt.field {
					continue
				}
				if f.Filterable != tt.want || f.Sortable != tt.want || f.Groupable != tt.want {
					t.Fatalf("filterable=%v sortable=%v groupable=%v, want all %v", f.Filterable, f.Sortable, f.Groupable, tt.want)
				}
				return
			}
			t.Fatalf("no field %s", tt.field)
		})
	}
	// Only long text areas are refused.
	for _, o := range db.Objects() {
		for _, f := range o.Fields {
			if long := f.Type == "textarea" && f.Length > 255; f.Filterable == long {
				t.Errorf("%s.%s (%s %d) filterable=%v", o.Name, f.Name, f.Type, f.Length, f.Filterable)
			}
		}
	}
}

func TestNonFilterableFieldStaysSelectable(t *testing.T) {
	db := newSeededDB(t)
	res := mustQuery(t, db, "SELECT Description FROM Case WHERE External_Id__c = 'CASE-0001'")
	if v, _ := res.Records[0].Get("Description"); v == nil {
		t.Fatal("Description not returned")
	}
	// SOSL still searches long text.
	if recs, err := db.Search("FIND {ticket} IN ALL FIELDS RETURNING Case(Id)", ""); err != nil || len(recs) == 0 {
		t.Fatalf("search: %d records, %v", len(recs), err)
	}
}

// TestCaseSensitiveComparisons: SOQL compares a unique case-sensitive field
// (the job id) exactly, and every other text field ignoring case.
func TestCaseSensitiveComparisons(t *testing.T) {
	db := newSeededDB(t)
	for i, v := range []string{"Job-A", "job-a", "JOB-B"} {
		if _, err := db.Create("Task", map[string]any{"Subject": v, JobIDField: v, "External_Id__c": fmt.Sprintf("ext-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		where string
		want  []string
	}{
		{"job id equals", "SFBlocks_Job_Id__c = 'job-a'", []string{"job-a"}},
		{"job id in", "SFBlocks_Job_Id__c IN ('JOB-A', 'JOB-B')", []string{"JOB-B"}},
		{"job id like", "SFBlocks_Job_Id__c LIKE 'Job%'", []string{"Job-A"}},
		{"job id not equals", "SFBlocks_Job_Id__c != 'job-a' AND SFBlocks_Job_Id__c != null", []string{"JOB-B", "Job-A"}},
		{"other text folds", "Subject = 'JOB-A'", []string{"Job-A", "job-a"}},
		{"other like folds", "Subject LIKE 'job-%'", []string{"JOB-B", "Job-A", "job-a"}},
		{"case-insensitive unique folds", "External_Id__c = 'EXT-0'", []string{"Job-A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustQuery(t, db, "SELECT Subject FROM Task WHERE "+tt.where)
			got := values(t, res.Records, "Subject")
			sort.Strings(got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
