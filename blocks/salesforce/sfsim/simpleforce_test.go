package sfsim

import (
	"context"
	"errors"
	"testing"

	"github.com/simpleforce/simpleforce"
	"golang.org/x/oauth2/clientcredentials"
)

// TestSimpleforceUnchanged runs a third-party Salesforce client, unmodified,
// against the simulator: token from the token endpoint, then query and create.
func TestSimpleforceUnchanged(t *testing.T) {
	s, _ := seeded(t, Options{})
	cfg := clientcredentials.Config{
		ClientID:     DefaultClientID,
		ClientSecret: DefaultClientSecret,
		TokenURL:     s.MyDomainURL() + "/services/oauth2/token",
	}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	instanceURL, _ := tok.Extra("instance_url").(string)
	if instanceURL != s.InstanceURL() {
		t.Fatalf("instance_url %q, want %q", instanceURL, s.InstanceURL())
	}

	client := simpleforce.NewClient(instanceURL, DefaultClientID, "66.0")
	client.SetSidLoc(tok.AccessToken, instanceURL)

	res, err := client.Query("SELECT Id, Name, Email FROM Contact WHERE Email = 'ada@example.com'")
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if res.TotalSize != 1 || !res.Done || len(res.Records) != 1 {
		t.Fatalf("Query: total %d done %v records %d", res.TotalSize, res.Done, len(res.Records))
	}
	ada := res.Records[0]
	if ada.StringField("Name") != "Ada Byron" || ada.Type() != "Contact" || len(ada.ID()) != 18 {
		t.Fatalf("record: name %q type %q id %q", ada.StringField("Name"), ada.Type(), ada.ID())
	}

	created := client.SObject("Contact").
		Set("FirstName", "Grace").
		Set("LastName", "Hopper").
		Set("Email", "grace@example.com").
		Create()
	if created == nil || len(created.ID()) != 18 {
		t.Fatal("Create returned no record")
	}
	// Read it back through simpleforce's Get, and through a query.
	got := client.SObject("Contact").Get(created.ID())
	if got == nil || got.StringField("LastName") != "Hopper" {
		t.Fatalf("Get (GET sobjects/Contact/{id} without fields=): %v", got)
	}
	res, err = client.Query("SELECT Id FROM Contact WHERE Email = " + "'grace@example.com'")
	if err != nil || res.TotalSize != 1 || res.Records[0].ID() != created.ID() {
		t.Fatalf("query created: %v %+v", err, res)
	}

	// Paging with simpleforce: it follows nextRecordsUrl as a query string.
	all, err := client.Query("SELECT Id FROM Task")
	if err != nil {
		t.Fatal(err)
	}
	if all.TotalSize != s.DB().Count("Task") {
		t.Fatalf("Task total %d, want %d", all.TotalSize, s.DB().Count("Task"))
	}

	// Errors come back in the shape simpleforce parses.
	_, err = client.Query("SELECT Nope FROM Contact")
	var sfErr simpleforce.SalesforceError
	if !errors.As(err, &sfErr) || sfErr.HttpCode != 400 || sfErr.ErrorCode != "INVALID_FIELD" {
		t.Fatalf("bad query error: %#v", err)
	}
	if st := s.Stats(); st.APICalls[KindCreate] != 1 || st.APICalls[KindQuery] != 4 || st.APICalls[KindGet] != 1 {
		t.Errorf("calls %v", st.APICalls)
	}
}
