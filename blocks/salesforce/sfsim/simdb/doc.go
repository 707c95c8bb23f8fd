// Package simdb is the data side of the Salesforce simulator: an in-memory,
// concurrency-safe database of Account, Contact, Case, Lead and Task records
// with describe metadata, SOQL queries, SOSL searches, create, upsert, get
// and soft delete, reporting failures as the Salesforce REST API does.
//
// The HTTP side (package sfsim) turns REST requests into calls on [DB] and
// renders the results: records are [*Record] values whose MarshalJSON gives
// Salesforce's shape ("attributes" first, then the fields in query order,
// relationship fields nested), and every failure is an [*Error] carrying the
// HTTP status, the errorCode and the message worded as Salesforce words it.
//
//	db, err := simdb.Default() // schema + embedded seed data
//	res, err := db.Query("SELECT Id, Name, Account.Name FROM Contact WHERE Phone = '+1 415 555 0100'",
//		simdb.QueryOptions{APIVersion: "66.0"})
//
// Every object carries two custom External ID fields: External_Id__c
// (Unique, case-insensitive) and [JobIDField] SFBlocks_Job_Id__c (Unique,
// case-sensitive), the idempotency field sfblocks upserts on. Long text
// areas (Description) are selectable but not filterable or sortable, as in
// Salesforce. Records written through the API are owned, created and last
// modified by [UserID], stamped with the clock given to [DB.SetNow].
//
// Parsing lives in package soql; this package resolves names against the
// schema (INVALID_FIELD, INVALID_TYPE), checks literal types and evaluates.
// Seed data is generated deterministically by TestGenerateSeed (run it with
// -update-seed) into this package's seed/ folder and embedded as [SeedData].
package simdb
