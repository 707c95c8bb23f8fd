package sfsim

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
	"golang.org/x/oauth2/clientcredentials"
)

// TestTokenNamesItsUser: the identity URL of a token is
// https://login.salesforce.com/id/<org>/<user>, and its user is the one that
// creates records.
func TestTokenNamesItsUser(t *testing.T) {
	s, _ := seeded(t, Options{})
	cfg := clientcredentials.Config{ClientID: DefaultClientID, ClientSecret: DefaultClientSecret, TokenURL: s.MyDomainURL() + "/services/oauth2/token"}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := tok.Extra("id").(string)
	if want := "https://login.salesforce.com/id/" + OrgID + "/" + UserID; id != want {
		t.Fatalf("id = %q, want %q", id, want)
	}
	if UserID != simdb.UserID {
		t.Fatalf("sfsim.UserID %s, simdb.UserID %s", UserID, simdb.UserID)
	}
	r := call(t, http.MethodPost, dataURL(s, "sobjects/Task"), tok.AccessToken, `{"Subject":"mine"}`)
	var created saveResult
	r.json(t, &created)
	var rec map[string]any
	call(t, http.MethodGet, dataURL(s, "sobjects/Task/"+created.ID+"?fields=CreatedById"), tok.AccessToken, nil).json(t, &rec)
	if rec["CreatedById"] != path.Base(id) {
		t.Fatalf("CreatedById %v, token user %s", rec["CreatedById"], path.Base(id))
	}
}

// TestFindRecordsCreatedInAWindow creates records through every write path
// at injected clock times and finds exactly the ones in a CreatedDate window
// by creator, the way a worker looks for an earlier ambiguous attempt.
func TestFindRecordsCreatedInAWindow(t *testing.T) {
	clock := newFakeClock() // 2026-03-02T09:00:00Z
	s := startSim(t, Options{Now: clock.Now})
	// startSim passes its own empty DB, which keeps its own clock; give it
	// the injected one, as New does for the DB it builds.
	s.DB().SetNow(clock.Now)
	tok := s.IssueToken("").AccessToken
	write := func(method, p, body string) {
		t.Helper()
		if r := call(t, method, dataURL(s, p), tok, body); r.status >= 300 {
			t.Fatalf("%s %s: %d %s", method, p, r.status, r.body)
		}
	}
	write(http.MethodPost, "sobjects/Task", `{"Subject":"Call from x","Status":"Completed"}`) // 09:00:00, before
	clock.Advance(time.Minute)                                                                // 09:01:00
	write(http.MethodPost, "sobjects/Task", `{"Subject":"Call from x","Status":"Completed","SFBlocks_Job_Id__c":"in-1"}`)
	clock.Advance(10 * time.Second) // 09:01:10
	write(http.MethodPost, "composite/sobjects", `{"records":[
		{"attributes":{"type":"Task"},"Subject":"Call from x","Status":"Completed","SFBlocks_Job_Id__c":"in-2"},
		{"attributes":{"type":"Task"},"Subject":"Call from y","Status":"Completed"}]}`)
	clock.Advance(10 * time.Second) // 09:01:20
	write(http.MethodPatch, "composite/sobjects/Task/SFBlocks_Job_Id__c", `{"records":[
		{"attributes":{"type":"Task"},"Subject":"Call from x","Status":"Completed","SFBlocks_Job_Id__c":"in-3"}]}`)
	clock.Advance(40 * time.Second) // 09:02:00, the upper bound
	write(http.MethodPatch, "sobjects/Task/SFBlocks_Job_Id__c/in-4", `{"Subject":"Call from x","Status":"Completed"}`)
	clock.Advance(time.Second) // 09:02:01, after
	write(http.MethodPost, "sobjects/Task", `{"Subject":"Call from x","Status":"Completed"}`)

	soql := "SELECT Id, SFBlocks_Job_Id__c, CreatedById, CreatedDate, LastModifiedDate, SystemModstamp FROM Task" +
		" WHERE CreatedById = '" + UserID + "' AND CreatedDate >= 2026-03-02T09:01:00Z AND CreatedDate <= 2026-03-02T09:02:00Z" +
		" AND Subject = 'Call from x' AND Status = 'Completed' ORDER BY CreatedDate LIMIT 5"
	var res struct {
		TotalSize int              `json:"totalSize"`
		Records   []map[string]any `json:"records"`
	}
	call(t, http.MethodGet, dataURL(s, "query?q="+url.QueryEscape(soql)), tok, nil).json(t, &res)
	var jobs, stamps []string
	for _, r := range res.Records {
		jobs = append(jobs, r["SFBlocks_Job_Id__c"].(string))
		stamps = append(stamps, r["CreatedDate"].(string))
		if r["CreatedById"] != UserID || r["LastModifiedDate"] != r["CreatedDate"] || r["SystemModstamp"] != r["CreatedDate"] {
			t.Errorf("audit fields %v", r)
		}
	}
	wantJobs := []string{"in-1", "in-2", "in-3", "in-4"}
	wantStamps := []string{"2026-03-02T09:01:00.000+0000", "2026-03-02T09:01:10.000+0000", "2026-03-02T09:01:20.000+0000", "2026-03-02T09:02:00.000+0000"}
	if !reflect.DeepEqual(jobs, wantJobs) || !reflect.DeepEqual(stamps, wantStamps) {
		t.Fatalf("found %v at %v\nwant %v at %v", jobs, stamps, wantJobs, wantStamps)
	}
	// LIMIT caps what comes back.
	var limited struct {
		TotalSize int `json:"totalSize"`
	}
	call(t, http.MethodGet, dataURL(s, "query?q="+url.QueryEscape(soql[:len(soql)-len("LIMIT 5")]+"LIMIT 3")), tok, nil).json(t, &limited)
	if limited.TotalSize != 3 {
		t.Fatalf("LIMIT 3 gave %d", limited.TotalSize)
	}
}

// TestOwnDBSharesTheClock: with no DB option the simulator's own database
// stamps records with Options.Now.
func TestOwnDBSharesTheClock(t *testing.T) {
	clock := newFakeClock()
	s, err := New(Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.DB().Create("Task", map[string]any{"Subject": "clocked"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.DB().Get("Task", id, []string{"CreatedDate"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Get("CreatedDate"); v != "2026-03-02T09:00:00.000+0000" {
		t.Fatalf("CreatedDate %v", v)
	}
}
