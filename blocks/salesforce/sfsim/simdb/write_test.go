package simdb

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCreateValidation(t *testing.T) {
	db := newSeededDB(t)
	adaID := "003Hs000000001dIAA"
	tests := []struct {
		name       string
		object     string
		given      map[string]any
		wantStatus int
		wantCode   string
		wantMsg    string
		wantFields []string
	}{
		{"unknown object", "Foo", map[string]any{"Name": "x"}, 404, "NOT_FOUND", "The requested resource does not exist", nil},
		{"id in body", "Contact", map[string]any{"Id": adaID, "LastName": "x"}, 400, "INVALID_FIELD", "The Id field should not be specified in the sobject data.", nil},
		{"unknown field", "Contact", map[string]any{"LastName": "x", "Foo": 1}, 400, "INVALID_FIELD", "No such column 'Foo' on sobject of type Contact", nil},
		{"read-only field", "Contact", map[string]any{"LastName": "x", "Name": "y", "CreatedDate": "2024-01-01T00:00:00Z"}, 400, "INVALID_FIELD_FOR_INSERT_UPDATE",
			"Unable to create/update fields: CreatedDate, Name. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", []string{"CreatedDate", "Name"}},
		{"contact last name missing", "Contact", map[string]any{"FirstName": "x"}, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", []string{"LastName"}},
		{"account name missing", "Account", map[string]any{"Phone": "1"}, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", []string{"Name"}},
		{"lead fields missing", "Lead", map[string]any{}, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName, Company]", []string{"LastName", "Company"}},
		{"empty string is missing", "Contact", map[string]any{"LastName": ""}, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", []string{"LastName"}},
		{"duplicate external id", "Contact", map[string]any{"LastName": "x", "External_Id__c": "con-0001"}, 400, "DUPLICATE_VALUE", "duplicate value found: External_Id__c duplicates value on record with id: " + adaID, []string{"External_Id__c"}},
		{"string for boolean", "Contact", map[string]any{"LastName": "x", "DoNotCall": "maybe"}, 400, "JSON_PARSER_ERROR", "Cannot deserialize instance of boolean from VALUE_STRING value maybe or request may be missing a required field", nil},
		{"string for number", "Task", map[string]any{"CallDurationInSeconds": "long"}, 400, "JSON_PARSER_ERROR", "Cannot deserialize instance of int from VALUE_STRING value long or request may be missing a required field", nil},
		{"fraction for int", "Task", map[string]any{"CallDurationInSeconds": 1.5}, 400, "JSON_PARSER_ERROR", "Cannot deserialize instance of int from VALUE_NUMBER_FLOAT value 1.5 or request may be missing a required field", nil},
		{"bad date", "Task", map[string]any{"ActivityDate": "2024-13-45"}, 400, "JSON_PARSER_ERROR", "Cannot deserialize instance of date from VALUE_STRING value 2024-13-45 or request may be missing a required field", nil},
		{"number for date", "Task", map[string]any{"ActivityDate": 20240101.0}, 400, "JSON_PARSER_ERROR", "Cannot deserialize instance of date from VALUE_NUMBER_INT value 20240101 or request may be missing a required field", nil},
		{"object for string", "Contact", map[string]any{"LastName": map[string]any{"a": 1}}, 400, "JSON_PARSER_ERROR", "Cannot deserialize instance of string from START_OBJECT value { or request may be missing a required field", nil},
		{"too long", "Contact", map[string]any{"LastName": strings.Repeat("x", 81)}, 400, "STRING_TOO_LONG", "Last Name: data value too large: " + strings.Repeat("x", 81) + " (max length=80)", []string{"LastName"}},
		{"bad email", "Contact", map[string]any{"LastName": "x", "Email": "not-an-email"}, 400, "INVALID_EMAIL_ADDRESS", "Email: invalid email address: not-an-email", []string{"Email"}},
		{"lookup of wrong type", "Contact", map[string]any{"LastName": "x", "AccountId": adaID}, 400, "MALFORMED_ID", "Account ID: id value of incorrect type: " + adaID, []string{"AccountId"}},
		{"lookup to missing record", "Contact", map[string]any{"LastName": "x", "AccountId": "001Hs0000000zzz"}, 400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []string{"AccountId"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := db.Count(tt.object)
			_, err := db.Create(tt.object, tt.given)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Message != tt.wantMsg || !reflect.DeepEqual(e.Fields, tt.wantFields) {
				t.Fatalf("got %d %s %q %v\nwant %d %s %q %v", e.Status, e.Code, e.Message, e.Fields, tt.wantStatus, tt.wantCode, tt.wantMsg, tt.wantFields)
			}
			if db.Count(tt.object) != before {
				t.Fatal("a failed create stored a record")
			}
		})
	}
}

func TestCreateAndRead(t *testing.T) {
	db := newSeededDB(t)
	body := decode(t, `{"FirstName":"Alan","LastName":"Turing","Phone":"+44 20 5555 0199","Email":"alan@example.com","AccountId":"001Hs0000000001","DoNotCall":"true","Birthdate":"1912-06-23","External_Id__c":"EXT-42"}`)
	id, err := db.Create("contact", body)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 18 || !strings.HasPrefix(id, "003") {
		t.Fatalf("id %q", id)
	}
	if canon, _ := normalizeID(id[:15]); canon != id {
		t.Fatalf("suffix of %s is not the case-safe checksum", id)
	}
	res := mustQuery(t, db, "SELECT Id, Name, Account.Name, DoNotCall, Birthdate, CreatedDate, OwnerId, IsDeleted FROM Contact WHERE External_Id__c = 'EXT-42'")
	if res.TotalSize != 1 {
		t.Fatalf("created contact not found: %d", res.TotalSize)
	}
	r := res.Records[0]
	want := map[string]any{"Id": id, "Name": "Alan Turing", "DoNotCall": true, "Birthdate": "1912-06-23", "CreatedDate": "2025-02-10T12:00:00.000+0000", "OwnerId": UserID, "IsDeleted": false}
	for k, v := range want {
		if got, _ := r.Get(k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	rec, err := db.Get("Contact", id[:15], []string{"LastName", "Account.Name"}, "60.0")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(rec)
	if want := `{"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/` + id + `"},"LastName":"Turing","Account":{"attributes":{"type":"Account","url":"/services/data/v60.0/sobjects/Account/001Hs0000000001IAA"},"Name":"Acme Corporation"}}`; string(got) != want {
		t.Fatalf("Get:\n got %s\nwant %s", got, want)
	}
	all, err := db.Get("Contact", id, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Fields()) != len(db.objects[1].schema.Fields) {
		t.Fatalf("Get(nil) returned %d fields", len(all.Fields()))
	}

	caseID, err := db.Create("Case", map[string]any{"Subject": "Phone line dead", "ContactId": id, "Status": "Closed"})
	if err != nil {
		t.Fatal(err)
	}
	res = mustQuery(t, db, "SELECT CaseNumber, Status, Priority, IsClosed, ClosedDate FROM Case WHERE Id = '"+caseID+"'")
	c := res.Records[0]
	if n, _ := c.Get("CaseNumber"); n != "00001151" {
		t.Errorf("CaseNumber %v", n)
	}
	if p, _ := c.Get("Priority"); p != "Medium" {
		t.Errorf("default Priority %v", p)
	}
	if v, _ := c.Get("IsClosed"); v != true {
		t.Errorf("IsClosed %v", v)
	}
	if v, _ := c.Get("ClosedDate"); v == nil {
		t.Error("ClosedDate not set")
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGetErrors(t *testing.T) {
	db := newSeededDB(t)
	tests := []struct {
		name, object, id string
		fields           []string
		wantStatus       int
		wantCode         string
		wantMsg          string
	}{
		{"unknown object", "Foo", "003Hs000000001dIAA", nil, 404, "NOT_FOUND", "The requested resource does not exist"},
		{"other object's id", "Account", "003Hs000000001dIAA", nil, 404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: 003Hs000000001dIAA"},
		{"missing record", "Contact", "003Hs0000000zzzAAA", nil, 404, "NOT_FOUND", "The requested resource does not exist"},
		{"unknown field", "Contact", "003Hs000000001dIAA", []string{"Foo"}, 400, "INVALID_FIELD", "No such column 'Foo' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Get(tt.object, tt.id, tt.fields, "")
			var e *Error
			if !errors.As(err, &e) || e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestUpsert(t *testing.T) {
	db := newSeededDB(t)
	id, created, err := db.Upsert("Contact", "external_id__c", "NEW-1", map[string]any{"LastName": "Lovelace"})
	if err != nil || !created {
		t.Fatalf("insert: %v created=%v", err, created)
	}
	id2, created, err := db.Upsert("Contact", "External_Id__c", "new-1", map[string]any{"FirstName": "Augusta"})
	if err != nil || created || id2 != id {
		t.Fatalf("update: %v created=%v id=%s want %s", err, created, id2, id)
	}
	res := mustQuery(t, db, "SELECT Name, External_Id__c FROM Contact WHERE Id = '"+id+"'")
	if n, _ := res.Records[0].Get("Name"); n != "Augusta Lovelace" {
		t.Fatalf("after update Name = %v", n)
	}
	if x, _ := res.Records[0].Get("External_Id__c"); x != "NEW-1" {
		t.Fatalf("external id %v", x)
	}
	// Upsert by Id updates.
	if _, created, err := db.Upsert("Contact", "Id", id, map[string]any{"Title": "Countess"}); err != nil || created {
		t.Fatalf("upsert by Id: %v %v", err, created)
	}
	for _, obj := range []string{"Account", "Case", "Lead", "Task"} {
		body := map[string]map[string]any{"Account": {"Name": "A"}, "Case": {"Subject": "S"}, "Lead": {"LastName": "L", "Company": "C"}, "Task": {"Subject": "T"}}[obj]
		if _, created, err := db.Upsert(obj, "External_Id__c", "UP-"+obj, body); err != nil || !created {
			t.Fatalf("upsert %s: %v", obj, err)
		}
	}

	tests := []struct {
		name       string
		object     string
		field      string
		value      string
		given      map[string]any
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"not an external id", "Contact", "LastName", "x", map[string]any{}, 404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: LastName"},
		{"unknown field", "Contact", "Foo__c", "x", map[string]any{}, 404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: Foo__c"},
		{"unknown object", "Foo", "External_Id__c", "x", map[string]any{}, 404, "NOT_FOUND", "The requested resource does not exist"},
		{"id not found", "Contact", "Id", "003Hs0000000zzz", map[string]any{}, 404, "NOT_FOUND", "The requested resource does not exist"},
		{"required missing on insert", "Contact", "External_Id__c", "NEW-2", map[string]any{"FirstName": "x"}, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]"},
		{"required cleared on update", "Contact", "External_Id__c", "NEW-1", map[string]any{"LastName": nil}, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]"},
		{"id in body", "Contact", "External_Id__c", "NEW-1", map[string]any{"Id": id}, 400, "INVALID_FIELD", "The Id field should not be specified in the sobject data."},
		{"read-only on update", "Contact", "External_Id__c", "NEW-1", map[string]any{"Name": "x"}, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: Name. Please check the security settings of this field and verify that it is read/write for your profile or permission set."},
		{"duplicate on update", "Contact", "External_Id__c", "NEW-1", map[string]any{"External_Id__c": "CON-0001"}, 400, "DUPLICATE_VALUE", "duplicate value found: External_Id__c duplicates value on record with id: 003Hs000000001dIAA"},
		{"several matches", "Contact", "Legacy_Number__c", "LEG-DUP", map[string]any{"Title": "x"}, 300, "MULTIPLE_CHOICES", "More than one record found for external id field Legacy_Number__c with value LEG-DUP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := db.Upsert(tt.object, tt.field, tt.value, tt.given)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v", err)
			}
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Fatalf("got %d %s %q", e.Status, e.Code, e.Message)
			}
			if e.Status == 300 && (len(e.Matches) != 2 || !strings.HasPrefix(e.Matches[0], "/services/data/v66.0/sobjects/Contact/003")) {
				t.Fatalf("matches %v", e.Matches)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	db := newSeededDB(t)
	id, err := db.Create("Lead", map[string]any{"LastName": "Gone", "Company": "Vanishing Ltd", "External_Id__c": "DEL-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Delete("Lead", id); err != nil {
		t.Fatal(err)
	}
	if n := mustQuery(t, db, "SELECT COUNT() FROM Lead WHERE Id = '"+id+"'").TotalSize; n != 0 {
		t.Fatal("query shows a deleted record")
	}
	res, err := db.Query("SELECT Id, IsDeleted FROM Lead WHERE Id = '"+id+"'", QueryOptions{IncludeDeleted: true})
	if err != nil || res.TotalSize != 1 {
		t.Fatalf("queryAll: %v %v", res, err)
	}
	if v, _ := res.Records[0].Get("IsDeleted"); v != true {
		t.Fatal("IsDeleted not set")
	}
	if db.Count("Lead") != 100 {
		t.Fatal("Count includes deleted")
	}
	if _, err := db.Get("Lead", id, nil, ""); !errors.Is(err, &Error{Code: CodeNotFound}) {
		t.Fatalf("Get deleted: %v", err)
	}
	var e *Error
	if err := db.Delete("Lead", id); !errors.As(err, &e) || e.Status != 404 || e.Code != "ENTITY_IS_DELETED" || e.Message != "entity is deleted" {
		t.Fatalf("second delete: %v", err)
	}
	if err := db.Delete("Lead", "00QHs0000000zzz"); !errors.Is(err, &Error{Code: CodeNotFound}) {
		t.Fatalf("delete missing: %v", err)
	}
	// The external ID of a deleted record is free again.
	if _, err := db.Create("Lead", map[string]any{"LastName": "Back", "Company": "C", "External_Id__c": "DEL-1"}); err != nil {
		t.Fatal(err)
	}
}
