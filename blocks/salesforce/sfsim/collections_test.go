package sfsim

import (
	"net/http"
	"testing"
)

func TestCollectionsUpsert(t *testing.T) {
	s, tok := seeded(t, Options{})
	path := "composite/sobjects/Task/SFBlocks_Job_Id__c"
	first := `{"allOrNone":false,"records":[
		{"attributes":{"type":"Task"},"Subject":"one","SFBlocks_Job_Id__c":"cu-1"},
		{"attributes":{"type":"Task"},"Subject":"two","SFBlocks_Job_Id__c":"cu-2"},
		{"attributes":{"type":"Task"},"Subject":"no key"},
		{"attributes":{"type":"Account"},"Name":"wrong type","SFBlocks_Job_Id__c":"cu-3"}]}`
	resp := call(t, http.MethodPatch, dataURL(s, path), tok, first)
	var results []collectionUpsertResult
	resp.json(t, &results)
	if resp.status != http.StatusOK || len(results) != 4 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	if !results[0].Success || !results[0].Created || !results[1].Created || results[0].ID == "" {
		t.Fatalf("creates: %s", resp.body)
	}
	if results[2].Success || results[2].Errors[0].StatusCode != "MISSING_ARGUMENT" || results[2].Errors[0].Message != "SFBlocks_Job_Id__c not specified" {
		t.Fatalf("missing key: %+v", results[2])
	}
	if results[3].Success || results[3].Errors[0].StatusCode != "INVALID_TYPE" {
		t.Fatalf("wrong type: %+v", results[3])
	}
	// Again: the same keys update the same records.
	again := call(t, http.MethodPatch, dataURL(s, path), tok,
		`{"records":[{"attributes":{"type":"Task"},"Subject":"one again","SFBlocks_Job_Id__c":"cu-1"}]}`)
	var second []collectionUpsertResult
	again.json(t, &second)
	if len(second) != 1 || !second[0].Success || second[0].Created || second[0].ID != results[0].ID {
		t.Fatalf("second upsert: %s", again.body)
	}
	if st := s.Stats(); st.RecordsCreated != 2 || st.APICalls[KindCollectionsUpsert] != 2 {
		t.Fatalf("stats: created %d, calls %v", st.RecordsCreated, st.APICalls)
	}

	refused := []struct {
		name, url  string
		wantStatus int
		wantCode   string
	}{
		{"not an external id", dataURL(s, "composite/sobjects/Task/Subject"), http.StatusNotFound, "NOT_FOUND"},
		{"unknown object", dataURL(s, "composite/sobjects/Nope/SFBlocks_Job_Id__c"), http.StatusNotFound, "NOT_FOUND"},
		{"before API 46.0", s.MyDomainURL() + "/services/data/v45.0/" + path, http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, http.MethodPatch, tt.url, tok, `{"records":[{"attributes":{"type":"Task"},"SFBlocks_Job_Id__c":"x"}]}`)
			if r.status != tt.wantStatus || r.errorCode(t) != tt.wantCode {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	if r := call(t, http.MethodPost, dataURL(s, path), tok, `{"records":[]}`); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST on the upsert resource: %d", r.status)
	}
}
