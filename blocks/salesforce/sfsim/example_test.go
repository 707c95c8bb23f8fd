package sfsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// Start a simulator, get a token with the client credentials flow on the
// My Domain host, and run a SOQL query.
func ExampleStart() {
	srv, err := sfsim.Start("127.0.0.1:0", sfsim.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	cfg := clientcredentials.Config{
		ClientID:     sfsim.DefaultClientID,
		ClientSecret: sfsim.DefaultClientSecret,
		TokenURL:     srv.MyDomainURL() + "/services/oauth2/token",
	}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	instance := tok.Extra("instance_url").(string)

	q := url.QueryEscape("SELECT Name, Phone FROM Contact WHERE Email = 'ada@example.com'")
	req, _ := http.NewRequest(http.MethodGet, instance+"/services/data/v66.0/query?q="+q, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var body struct {
		TotalSize int `json:"totalSize"`
		Records   []struct {
			Name  string `json:"Name"`
			Phone string `json:"Phone"`
		} `json:"records"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	fmt.Println(resp.Header.Get("Sforce-Limit-Info"))
	fmt.Println(body.TotalSize, body.Records[0].Name, body.Records[0].Phone)
	// Output:
	// api-usage=1/15000
	// 1 Ada Byron +1 415 555 0100
}

// Inject faults: one in ten data calls answers 503 SERVER_UNAVAILABLE, and
// the next write fails with UNABLE_TO_LOCK_ROW.
func ExampleFaults() {
	srv, err := sfsim.New(sfsim.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Faults().AddErrorRate(sfsim.ErrorRule{Rate: 0.1, Status: http.StatusServiceUnavailable}); err != nil {
		fmt.Println(err)
		return
	}
	srv.Faults().LockNextWrites(1)
	cfg := srv.Faults().Config()
	fmt.Println(len(cfg.Errors), cfg.Errors[0].Rate, cfg.LockRows)
	// Output: 1 0.1 1
}
