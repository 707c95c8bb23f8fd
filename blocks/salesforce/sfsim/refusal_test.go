package sfsim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRefuseClientCredentials: the fault answers client_credentials with
// Salesforce's OAuth error body until its end by the simulator's clock,
// after the checks that do not depend on the app's policy; it leaves the
// other grants alone and is set and shown over /_sim/faults too.
func TestRefuseClientCredentials(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := startSim(t, Options{Now: clock.Now})
	cc := func(base, secret string) (response, map[string]any) {
		return tokenPost(t, base, url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {secret}})
	}
	if err := s.Faults().RefuseClientCredentials(&GrantRefusal{Until: clock.Now().Add(3 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		advance    time.Duration
		base       string
		secret     string
		wantStatus int
		wantErr    string
		wantDesc   string
	}{
		{"refused as while the policy propagates", 0, s.MyDomainURL(), DefaultClientSecret, 400, "invalid_grant", "no client credentials user enabled"},
		{"wrong secret still invalid_client", 0, s.MyDomainURL(), "wrong", 400, "invalid_client", "invalid client credentials"},
		{"login host still refused for its domain", 0, s.LoginURL(), DefaultClientSecret, 400, "invalid_grant", "request not supported on this domain"},
		{"still refused just before the end", 3*time.Minute - time.Second, s.MyDomainURL(), DefaultClientSecret, 400, "invalid_grant", "no client credentials user enabled"},
		{"allowed at the end", time.Second, s.MyDomainURL(), DefaultClientSecret, 200, "", ""},
	}
	for _, tt := range tests {
		clock.Advance(tt.advance)
		resp, body := cc(tt.base, tt.secret)
		if tt.wantStatus == http.StatusOK {
			if resp.status != 200 || body["access_token"] == nil {
				t.Fatalf("%s: %d %v", tt.name, resp.status, body)
			}
			continue
		}
		if resp.status != tt.wantStatus || body["error"] != tt.wantErr || body["error_description"] != tt.wantDesc || body["access_token"] != nil {
			t.Fatalf("%s: got %d %v, want %d %s %q", tt.name, resp.status, body, tt.wantStatus, tt.wantErr, tt.wantDesc)
		}
	}
	st := s.Stats()
	if st.FaultsInjected["refuseClientCredentials"] != 2 || st.TokenErrors["invalid_grant"] != 3 || st.TokenGrants["client_credentials"] != 1 {
		t.Errorf("stats: faults %v errors %v grants %v", st.FaultsInjected, st.TokenErrors, st.TokenGrants)
	}
	if s.Faults().Config().RefuseClientCredentials != nil {
		t.Error("an ended refusal is still configured")
	}

	// Over HTTP: a 403 with another error, until cleared; refresh grants
	// are not affected.
	put := call(t, http.MethodPut, s.MyDomainURL()+"/_sim/faults", "", `{"refuseClientCredentials":{"status":403,"error":"insufficient_scope","description":"blocked"}}`)
	if put.status != 200 || !strings.Contains(string(put.body), `"refuseClientCredentials":{"status":403`) {
		t.Fatalf("PUT /_sim/faults: %d %s", put.status, put.body)
	}
	clock.Advance(24 * time.Hour)
	if resp, body := cc(s.MyDomainURL(), DefaultClientSecret); resp.status != 403 || body["error"] != "insufficient_scope" || body["error_description"] != "blocked" {
		t.Fatalf("403 refusal: %d %v", resp.status, body)
	}
	it := s.IssueToken("api refresh_token")
	if resp, body := tokenPost(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultClientID},
		"client_secret": {DefaultClientSecret}, "refresh_token": {it.RefreshToken}}); resp.status != 200 || body["access_token"] == nil {
		t.Fatalf("refresh during the refusal: %d %v", resp.status, body)
	}
	if bad := call(t, http.MethodPut, s.MyDomainURL()+"/_sim/faults", "", `{"refuseClientCredentials":{"status":503}}`); bad.status != 400 || !strings.Contains(string(bad.body), "not a 4xx") {
		t.Fatalf("a 5xx refusal was accepted: %d %s", bad.status, bad.body)
	}
	if err := s.Faults().RefuseClientCredentials(nil); err != nil {
		t.Fatal(err)
	}
	if resp, _ := cc(s.MyDomainURL(), DefaultClientSecret); resp.status != 200 {
		t.Fatalf("after clearing: %d", resp.status)
	}
}
