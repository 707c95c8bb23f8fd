package simdb

import (
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestAuditFieldsFollowTheClock: a record written through the API is created
// and last modified by [UserID] at the database clock, and later writes move
// LastModifiedDate and SystemModstamp only.
func TestAuditFieldsFollowTheClock(t *testing.T) {
	if withSuffix("005Hs0000000001") != UserID {
		t.Fatalf("UserID %s lacks its checksum %s", UserID, withSuffix("005Hs0000000001"))
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	db := newSeededDB(t)
	db.SetNow(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	id, err := db.Create("Task", map[string]any{"Subject": "Call from x", "Status": "Completed"})
	if err != nil {
		t.Fatal(err)
	}
	audit := func() map[string]any {
		t.Helper()
		rec, err := db.Get("Task", id, []string{"CreatedById", "CreatedDate", "LastModifiedById", "LastModifiedDate", "SystemModstamp", "OwnerId"}, "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		for _, k := range rec.Fields() {
			out[k], _ = rec.Get(k)
		}
		return out
	}
	want := map[string]any{
		"CreatedById": UserID, "LastModifiedById": UserID, "OwnerId": UserID,
		"CreatedDate": "2026-12-01T10:00:30.000+0000", "LastModifiedDate": "2026-12-01T10:00:30.000+0000",
		"SystemModstamp": "2026-12-01T10:00:30.000+0000",
	}
	if got := audit(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after create\n got %v\nwant %v", got, want)
	}
	advance(5 * time.Minute)
	if _, _, err := db.Upsert("Task", "Id", id, map[string]any{"Priority": "High"}); err != nil {
		t.Fatal(err)
	}
	want["LastModifiedDate"], want["SystemModstamp"] = "2026-12-01T10:05:30.000+0000", "2026-12-01T10:05:30.000+0000"
	if got := audit(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after update\n got %v\nwant %v", got, want)
	}
}

// TestFindTheEarlierAttempt runs the query a worker uses to find the record
// an ambiguous create may have made: creator, a CreatedDate window with
// datetime literals, filterable fields, and LIMIT.
func TestFindTheEarlierAttempt(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 9, 59, 0, 0, time.UTC)
	db := newSeededDB(t)
	db.SetNow(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	create := func(at time.Time, subject string) string {
		t.Helper()
		mu.Lock()
		now = at
		mu.Unlock()
		id, err := db.Create("Task", map[string]any{"Subject": subject, "Status": "Completed"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	at := func(hms string) time.Time {
		tm, err := time.Parse(time.RFC3339, "2026-12-01T"+hms+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	create(at("09:59:59"), "Call from x")           // just before the window
	inside := create(at("10:00:00"), "Call from x") // on the lower bound
	create(at("10:00:30"), "Call from y")           // other subject
	edge := create(at("10:01:00"), "Call from x")   // on the upper bound
	create(at("10:01:00.001"), "Call from x")       // just after
	const window = "CreatedDate >= 2026-12-01T10:00:00Z AND CreatedDate <= 2026-12-01T10:01:00Z"
	tests := []struct {
		name string
		soql string
		want []string
	}{
		{"window", "SELECT Id FROM Task WHERE CreatedById = '" + UserID + "' AND " + window + " AND Subject = 'Call from x' AND Status = 'Completed' LIMIT 3", []string{inside, edge}},
		{"15-character user id", "SELECT Id FROM Task WHERE CreatedById = '" + UserID[:15] + "' AND " + window + " AND Subject = 'Call from x'", []string{inside, edge}},
		{"offset literals", "SELECT Id FROM Task WHERE CreatedDate >= 2026-12-01T11:00:00+01:00 AND CreatedDate <= 2026-12-01T05:01:00-05:00 AND Subject = 'Call from x'", []string{inside, edge}},
		{"limit 1", "SELECT Id FROM Task WHERE " + window + " AND Subject = 'Call from x' ORDER BY CreatedDate LIMIT 1", []string{inside}},
		{"another user", "SELECT Id FROM Task WHERE CreatedById = '005Hs0000000002IAA' AND " + window, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := values(t, mustQuery(t, db, tt.soql).Records, "Id")
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
