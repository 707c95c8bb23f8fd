// Package sfsim is an in-memory Salesforce org that speaks the documented
// REST and OAuth wire format: the stand-in for Salesforce wherever sfblocks
// is tested or demonstrated, since the real thing cannot be reached from here.
//
// In the flow (NATS → worker → blocks → blocks/salesforce ← auth), sfsim sits
// at the far end of the HTTP calls made by blocks/salesforce and auth. It
// answers with Salesforce's status codes, JSON shapes, error codes and
// headers, so any Salesforce client works against it unchanged (its tests run
// github.com/simpleforce/simpleforce against it). The data lives in
// [simdb.DB], which parses SOQL and SOSL and validates writes; sfsim is the
// HTTP side.
//
// # What it serves
//
// One listener plays two hosts, told apart by the Host header:
// http://127.0.0.1:PORT stands for login.salesforce.com ([Server.LoginURL])
// and http://localhost:PORT for the org's My Domain ([Server.MyDomainURL],
// also the instance_url of every token).
//
//   - /services/oauth2/authorize: web server flow with PKCE (S256). It
//     auto-approves as a pre-authorized admin user and redirects back with
//     code and state.
//   - /services/oauth2/token: authorization_code, refresh_token and
//     client_credentials (the last only on the My Domain host), client
//     authentication by form fields or HTTP Basic. Answers carry
//     access_token, refresh_token (when granted), signature, scope,
//     instance_url, id, token_type and issued_at, and no expires_in, as
//     Salesforce does. Optional refresh token rotation with family
//     revocation on reuse ([Options.RotateRefreshTokens]).
//   - /services/oauth2/revoke and /services/oauth2/introspect.
//   - /services/data/ (versions), /services/data/vXX.X/ (resources),
//     sobjects (describeGlobal, basic info, describe, get, create, update,
//     delete, upsert by external ID), query and queryAll with query locators
//     and Sforce-Query-Options batch sizes, search, parameterizedSearch (GET
//     and POST), composite/sobjects (collection create, POST) and
//     composite/sobjects/{Object}/{Field} (collection upsert, PATCH, API
//     46.0+), both with allOrNone rolling back every record, and limits.
//     Every authenticated answer carries Sforce-Limit-Info and counts
//     against [Options.DailyAPILimit]; past it, 403 REQUEST_LIMIT_EXCEEDED
//     "TotalRequests Limit exceeded.". While [Options.ConcurrentRequestLimit]
//     requests have run [Options.LongRequestThreshold] (20 s) or more, a new
//     one gets 403 REQUEST_LIMIT_EXCEEDED "ConcurrentRequests (Concurrent API
//     Requests) Limit exceeded.", as Salesforce documents. A collection create
//     of more than 10 chunks (runs of one type) is refused as a whole with
//     400 INVALID_BATCH_REQUEST: the rule is documented, the REST wording is
//     not (the message is Apex's).
//   - /_sim/: test controls, JSON in and out, no auth: GET/PUT/DELETE
//     /_sim/faults ([FaultConfig]), GET /_sim/stats ([Stats]), GET/PUT
//     /_sim/usage (daily requests used), POST /_sim/expire-sessions, POST
//     /_sim/reset (faults, stats, usage), POST /_sim/token (mint a token
//     without OAuth, like [Server.IssueToken]).
//
// # The data
//
// Every object (Account, Contact, Case, Lead, Task) has two custom External
// ID fields: External_Id__c (Unique, case-insensitive) and
// SFBlocks_Job_Id__c ([simdb.JobIDField]: Text 255, Unique, case-sensitive),
// the idempotency field an Insert job upserts on so that retries cannot
// make a second record. Upserts of one value racing each other make one
// record: one creates it, the rest update it (the upsertRace fault answers
// some of the rest DUPLICATE_VALUE, as Salesforce can). Long text areas
// (Description) are selectable but, as in Salesforce, not filterable or
// sortable: describe
// says filterable false and SOQL refuses them in WHERE (400 INVALID_FIELD
// "field 'Description' can not be filtered in a query call") and ORDER BY.
// Records written through the API are owned, created and last modified by
// [UserID], the user whose identity URL every token carries as "id", at
// [Options.Now]; so a client can find what an earlier, unanswered attempt
// made with SELECT Id FROM Task WHERE CreatedById = '<UserID>' AND
// CreatedDate >= <start> AND CreatedDate <= <end> AND ... LIMIT n.
//
// # Using it from Go tests
//
//	srv, err := sfsim.Start("127.0.0.1:0", sfsim.Options{})
//	if err != nil { t.Fatal(err) }
//	t.Cleanup(func() { srv.Close() })
//	cfg := clientcredentials.Config{
//		ClientID: sfsim.DefaultClientID, ClientSecret: sfsim.DefaultClientSecret,
//		TokenURL: srv.MyDomainURL() + "/services/oauth2/token",
//	}
//	tok, err := cfg.Token(ctx) // tok.Extra("instance_url") is srv.InstanceURL()
//
// Or, for tests that are not about OAuth, mint a token directly with
// [Server.IssueToken]. httptest.NewServer(srv.Handler()) works too; request
// the same port via "localhost" to reach the My Domain host.
//
// Faults are injected with [Server.Faults] (latency, error rates, outages
// that answer 503 or drop connections, UNABLE_TO_LOCK_ROW on the next
// writes, commit-then-drop: writes that commit and then lose their answer,
// see [CommitThenDrop], upsert races: DUPLICATE_VALUE for an upsert
// that would update, see [Faults.SetUpsertRace], and client_credentials
// grants refused for a while, as while an app's policy propagates, see
// [Faults.RefuseClientCredentials]), sessions are expired with
// [Server.ExpireAllSessions], and [Server.Stats] counts calls by kind,
// token grants, records created, and records created whose answer was lost.
//
// # Running it as `sfblocks sim`
//
// The command starts [Start] with flags mapped onto [Options] (client ID and
// secret, callback URLs, session timeout, rotation, daily limit, token
// latency) and prints LoginURL and MyDomainURL. Faults can then be driven
// over HTTP:
//
//	curl -X PUT localhost:PORT/_sim/faults -d '{"errors":[{"rate":0.1,"status":503}]}'
//	curl -X PUT localhost:PORT/_sim/faults -d '{"latency":{"distribution":"normal","mean":"200ms","stdDev":"50ms"}}'
//	curl -X PUT localhost:PORT/_sim/faults -d '{"outage":{"mode":"refuse"}}'
//	curl -X PUT localhost:PORT/_sim/faults -d '{"lockRows":3}'
//	curl -X PUT localhost:PORT/_sim/faults -d '{"commitThenDrop":{"rate":0.2}}'
//	curl -X PUT localhost:PORT/_sim/faults -d '{"seed":7,"commitThenDrop":{"rate":0.5,"mode":"withhold","delay":"45s"}}'
//	curl -X PUT localhost:PORT/_sim/faults -d '{"upsertRace":0.3}'
//	curl -X PUT localhost:PORT/_sim/faults -d '{"refuseClientCredentials":{"until":"2026-03-02T09:03:00Z"}}'
//	curl localhost:PORT/_sim/stats
//	curl -X POST localhost:PORT/_sim/expire-sessions
//	curl -X POST localhost:PORT/_sim/reset
//
// The /_sim endpoints have no authentication: the simulator is for loopback
// test use only.
package sfsim
