package simdb

import "strings"

// FieldSchema is the describe metadata of one field (a subset of the
// Salesforce describe "fields" entry). Type is the describe type name:
// id, reference, string, textarea, phone, email, url, picklist, combobox,
// boolean, int, double, currency, date or datetime.
type FieldSchema struct {
	Name, Label, Type                                                                 string
	Length                                                                            int // max characters for text types, 0 otherwise
	Nillable, Createable, Updateable, Unique, ExternalID, IDLookup, DefaultedOnCreate bool
	ReferenceTo                                                                       []string // for reference fields
	RelationshipName                                                                  string   // for reference fields with a traversable relationship

	// CaseSensitive is set on a Unique text field created with Salesforce's
	// "Treat "ABC" and "abc" as different values (case sensitive)" option.
	// Such a field alone compares case-sensitively: its uniqueness, upsert
	// matching and SOQL comparisons (=, !=, <, IN, LIKE, ...) all tell "ABC"
	// from "abc" (SOQL and SOSL Reference, "Comparison Operators"; Apex
	// Developer Guide, "Upserting Records").
	CaseSensitive bool
	// Filterable, Sortable and Groupable say whether the field may appear in
	// a SOQL WHERE, ORDER BY or GROUP BY. Every field is, except long text
	// areas (textarea longer than 255 characters, such as Description):
	// SOQL refuses them with INVALID_FIELD "field 'Description' can not be
	// filtered in a query call" (and "... sorted ..." for ORDER BY).
	Filterable, Sortable, Groupable bool
}

// longTextArea is the "Long Text Area" (and "Rich Text Area") field type:
// on the wire a textarea longer than the 255 characters of a plain Text
// Area. Salesforce documents that a WHERE condition "can be any field
// except a long text area field, encrypted data field, or base64-encoded
// field" (SOQL and SOSL Reference, "fieldExpression Syntax"); no seeded
// object has encrypted or base64 fields.
func longTextArea(f *FieldSchema) bool { return f.Type == "textarea" && f.Length > 255 }

// matchFolded reports whether values of f match and collide ignoring case:
// in uniqueness checks and upsert matching only a Unique field without the
// case-sensitive option folds case; a non-unique External ID matches exactly
// ("Custom field matching is case-insensitive only if the custom field has
// the Unique and Treat "ABC" and "abc" as duplicate values (case
// insensitive) attributes selected", Apex Developer Guide).
func matchFolded(f *FieldSchema) bool { return f.Unique && !f.CaseSensitive }

// indexKey is the external-ID index key of value s of field f.
func indexKey(f *FieldSchema, s string) string {
	if matchFolded(f) {
		return strings.ToLower(s)
	}
	return s
}

// ObjectSchema is the describe metadata of one sObject type.
type ObjectSchema struct {
	Name, Label, LabelPlural, KeyPrefix string
	Queryable, Searchable, Createable   bool
	Fields                              []FieldSchema
}

// object is the compiled schema of one sObject with case-insensitive
// lookups.
type object struct {
	schema    ObjectSchema
	fields    map[string]*FieldSchema // lower-case name
	rels      map[string]*FieldSchema // lower-case relationship name → reference field
	required  []string                // must be non-null on create
	nameGroup []string                // fields searched by IN NAME FIELDS
	defaults  map[string]any          // values set on create when absent
}

func (o *object) field(name string) *FieldSchema { return o.fields[strings.ToLower(name)] }

// UserID is the 18-character ID of the org's one user, the admin every
// access token of sfsim acts as: the OwnerId, CreatedById and
// LastModifiedById of every record written through the API (seed records
// name it too unless they carry their own).
const UserID = "005Hs0000000001IAA"

// field constructors keep the schema table readable.
func idField() FieldSchema {
	return FieldSchema{Name: "Id", Label: "Record ID", Type: "id", Length: 18, IDLookup: true, DefaultedOnCreate: true}
}

func text(name, label string, length int) FieldSchema {
	return FieldSchema{Name: name, Label: label, Type: "string", Length: length, Nillable: true, Createable: true, Updateable: true}
}

func typed(typ, name, label string, length int) FieldSchema {
	f := text(name, label, length)
	f.Type = typ
	return f
}

func boolean(name, label string) FieldSchema {
	f := typed("boolean", name, label, 0)
	f.Nillable, f.DefaultedOnCreate = false, true
	return f
}

func ref(name, label, rel string, to ...string) FieldSchema {
	f := typed("reference", name, label, 18)
	f.ReferenceTo, f.RelationshipName = to, rel
	return f
}

func readOnly(f FieldSchema) FieldSchema {
	f.Createable, f.Updateable = false, false
	return f
}

func required(f FieldSchema) FieldSchema {
	f.Nillable = false
	return f
}

func defaulted(f FieldSchema) FieldSchema {
	f.DefaultedOnCreate = true
	return f
}

func idLookup(f FieldSchema) FieldSchema {
	f.IDLookup = true
	return f
}

// systemFields are on every object, after Id.
func systemFields() []FieldSchema {
	owner := defaulted(ref("OwnerId", "Owner ID", "", "User"))
	owner.Nillable = false
	return []FieldSchema{
		boolean("IsDeleted", "Deleted"),
		readOnly(required(defaulted(typed("datetime", "CreatedDate", "Created Date", 0)))),
		readOnly(required(defaulted(ref("CreatedById", "Created By ID", "", "User")))),
		readOnly(required(defaulted(typed("datetime", "LastModifiedDate", "Last Modified Date", 0)))),
		readOnly(required(defaulted(ref("LastModifiedById", "Last Modified By ID", "", "User")))),
		readOnly(required(defaulted(typed("datetime", "SystemModstamp", "System Modstamp", 0)))),
		owner,
	}
}

// JobIDField is the idempotency field on every object: Text(255), External
// ID, Unique and case-sensitive (Salesforce's "Treat "ABC" and "abc" as
// different values" option), so a job identity used as its value names at
// most one record and an upsert on it
// (PATCH sobjects/{Object}/SFBlocks_Job_Id__c/{value}) creates that record
// once and updates it afterwards. Seed records leave it null.
const JobIDField = "SFBlocks_Job_Id__c"

// customFields are on every object: a unique (case-insensitive) external ID
// so upsert can be exercised everywhere, and the case-sensitive idempotency
// field [JobIDField].
func customFields() []FieldSchema {
	ext := idLookup(text("External_Id__c", "External ID", 255))
	ext.ExternalID, ext.Unique = true, true
	job := idLookup(text(JobIDField, "SFBlocks Job ID", 255))
	job.ExternalID, job.Unique, job.CaseSensitive = true, true, true
	return []FieldSchema{ext, job}
}

// legacyNumber is a non-unique external ID (Account and Contact), which is
// how an upsert can find several matches (HTTP 300).
func legacyNumber() FieldSchema {
	f := idLookup(text("Legacy_Number__c", "Legacy Number", 80))
	f.ExternalID = true
	return f
}

type objectDef struct {
	name, label, plural, prefix string
	fields                      []FieldSchema
	required                    []string
	nameGroup                   []string
	defaults                    map[string]any
}

func objectDefs() []objectDef {
	return []objectDef{
		{
			name: "Account", label: "Account", plural: "Accounts", prefix: "001",
			fields: []FieldSchema{
				idLookup(required(text("Name", "Account Name", 255))),
				text("AccountNumber", "Account Number", 40),
				typed("phone", "Phone", "Account Phone", 40),
				typed("phone", "Fax", "Account Fax", 40),
				typed("url", "Website", "Website", 255),
				typed("picklist", "Industry", "Industry", 255),
				typed("picklist", "Type", "Account Type", 255),
				typed("textarea", "Description", "Account Description", 32000),
				typed("textarea", "BillingStreet", "Billing Street", 255),
				text("BillingCity", "Billing City", 40),
				text("BillingState", "Billing State/Province", 80),
				text("BillingPostalCode", "Billing Zip/Postal Code", 20),
				text("BillingCountry", "Billing Country", 80),
				typed("int", "NumberOfEmployees", "Employees", 0),
				typed("currency", "AnnualRevenue", "Annual Revenue", 0),
				legacyNumber(),
			},
			required:  []string{"Name"},
			nameGroup: []string{"Name"},
		},
		{
			name: "Contact", label: "Contact", plural: "Contacts", prefix: "003",
			fields: []FieldSchema{
				ref("AccountId", "Account ID", "Account", "Account"),
				required(text("LastName", "Last Name", 80)),
				text("FirstName", "First Name", 40),
				typed("picklist", "Salutation", "Salutation", 255),
				idLookup(readOnly(text("Name", "Full Name", 121))),
				text("Title", "Title", 128),
				text("Department", "Department", 80),
				idLookup(typed("email", "Email", "Email", 80)),
				typed("phone", "Phone", "Business Phone", 40),
				typed("phone", "MobilePhone", "Mobile Phone", 40),
				typed("phone", "HomePhone", "Home Phone", 40),
				typed("phone", "OtherPhone", "Other Phone", 40),
				text("MailingCity", "Mailing City", 40),
				text("MailingCountry", "Mailing Country", 80),
				typed("date", "Birthdate", "Birthdate", 0),
				typed("picklist", "LeadSource", "Lead Source", 255),
				typed("textarea", "Description", "Contact Description", 32000),
				boolean("DoNotCall", "Do Not Call"),
				boolean("HasOptedOutOfEmail", "Email Opt Out"),
				legacyNumber(),
			},
			required:  []string{"LastName"},
			nameGroup: []string{"Name", "FirstName", "LastName"},
			defaults:  map[string]any{"DoNotCall": false, "HasOptedOutOfEmail": false},
		},
		{
			name: "Case", label: "Case", plural: "Cases", prefix: "500",
			fields: []FieldSchema{
				idLookup(required(readOnly(defaulted(text("CaseNumber", "Case Number", 30))))),
				ref("ContactId", "Contact ID", "Contact", "Contact"),
				ref("AccountId", "Account ID", "Account", "Account"),
				text("SuppliedName", "Name", 80),
				typed("email", "SuppliedEmail", "Email Address", 80),
				text("SuppliedPhone", "Phone", 40),
				typed("picklist", "Type", "Case Type", 255),
				defaulted(typed("picklist", "Status", "Status", 255)),
				typed("picklist", "Reason", "Case Reason", 255),
				typed("picklist", "Origin", "Case Origin", 255),
				text("Subject", "Subject", 255),
				defaulted(typed("picklist", "Priority", "Priority", 255)),
				typed("textarea", "Description", "Description", 32000),
				readOnly(boolean("IsClosed", "Closed")),
				readOnly(typed("datetime", "ClosedDate", "Closed Date", 0)),
				boolean("IsEscalated", "Escalated"),
			},
			nameGroup: []string{"CaseNumber", "Subject"},
			defaults:  map[string]any{"Status": "New", "Priority": "Medium", "IsEscalated": false},
		},
		{
			name: "Lead", label: "Lead", plural: "Leads", prefix: "00Q",
			fields: []FieldSchema{
				required(text("LastName", "Last Name", 80)),
				text("FirstName", "First Name", 40),
				typed("picklist", "Salutation", "Salutation", 255),
				idLookup(readOnly(text("Name", "Full Name", 121))),
				text("Title", "Title", 128),
				required(text("Company", "Company", 255)),
				text("City", "City", 40),
				text("Country", "Country", 80),
				typed("phone", "Phone", "Phone", 40),
				typed("phone", "MobilePhone", "Mobile Phone", 40),
				idLookup(typed("email", "Email", "Email", 80)),
				typed("textarea", "Description", "Description", 32000),
				typed("picklist", "LeadSource", "Lead Source", 255),
				defaulted(required(typed("picklist", "Status", "Status", 255))),
				typed("picklist", "Industry", "Industry", 255),
				typed("picklist", "Rating", "Rating", 255),
				readOnly(boolean("IsConverted", "Converted")),
			},
			required:  []string{"LastName", "Company"},
			nameGroup: []string{"Name", "FirstName", "LastName", "Company"},
			defaults:  map[string]any{"Status": "Open - Not Contacted", "IsConverted": false},
		},
		{
			name: "Task", label: "Task", plural: "Tasks", prefix: "00T",
			fields: []FieldSchema{
				ref("WhoId", "Name ID", "Who", "Contact", "Lead"),
				ref("WhatId", "Related To ID", "What", "Account", "Case"),
				typed("combobox", "Subject", "Subject", 255),
				typed("date", "ActivityDate", "Due Date Only", 0),
				defaulted(required(typed("picklist", "Status", "Status", 255))),
				defaulted(required(typed("picklist", "Priority", "Priority", 255))),
				typed("textarea", "Description", "Description", 32000),
				readOnly(boolean("IsClosed", "Closed")),
				typed("picklist", "TaskSubtype", "Task Subtype", 255),
				typed("picklist", "CallType", "Call Type", 255),
				typed("int", "CallDurationInSeconds", "Call Duration", 0),
				text("CallObject", "Call Object Identifier", 255),
				text("CallDisposition", "Call Result", 255),
			},
			nameGroup: []string{"Subject"},
			defaults:  map[string]any{"Status": "Not Started", "Priority": "Normal"},
		},
	}
}

// buildObjects compiles the schema table.
func buildObjects() []*object {
	var out []*object
	for _, d := range objectDefs() {
		fields := append([]FieldSchema{idField()}, systemFields()...)
		fields = append(fields, d.fields...)
		fields = append(fields, customFields()...)
		o := &object{
			schema: ObjectSchema{
				Name: d.name, Label: d.label, LabelPlural: d.plural, KeyPrefix: d.prefix,
				Queryable: true, Searchable: true, Createable: true, Fields: fields,
			},
			fields:    map[string]*FieldSchema{},
			rels:      map[string]*FieldSchema{},
			required:  d.required,
			nameGroup: d.nameGroup,
			defaults:  d.defaults,
		}
		for i := range o.schema.Fields {
			f := &o.schema.Fields[i]
			long := longTextArea(f)
			f.Filterable, f.Sortable, f.Groupable = !long, !long, !long
			o.fields[strings.ToLower(f.Name)] = f
			if f.RelationshipName != "" {
				o.rels[strings.ToLower(f.RelationshipName)] = f
			}
		}
		out = append(out, o)
	}
	return out
}

// isText reports whether values of type typ are stored as strings.
func isText(typ string) bool {
	switch typ {
	case "string", "textarea", "phone", "email", "url", "picklist", "combobox", "id", "reference":
		return true
	}
	return false
}

func isNumber(typ string) bool { return typ == "int" || typ == "double" || typ == "currency" }
