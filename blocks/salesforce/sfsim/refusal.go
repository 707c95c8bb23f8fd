package sfsim

import (
	"fmt"
	"net/http"
	"time"
)

// Salesforce answers a client_credentials grant with 400 invalid_grant "no
// client credentials user enabled" when the app has no Run As user for the
// flow, which is also what a client sees while a change of the app's
// policies is still propagating (Salesforce says that can take up to 10
// minutes). The refuseClientCredentials fault produces that answer, or any
// other OAuth error, for a while, so a client can be tested on a refusal
// that heals by itself.

// Defaults of [GrantRefusal].
const (
	DefaultRefusalError       = "invalid_grant"
	DefaultRefusalDescription = "no client credentials user enabled"
)

// GrantRefusal makes the token endpoint refuse client_credentials grants
// whose client authentication is right (a wrong secret is still answered
// invalid_client, a login host still "request not supported on this
// domain"), with Salesforce's OAuth error body {"error",
// "error_description"}.
type GrantRefusal struct {
	// Status is the HTTP status. Defaults to 400, as Salesforce answers; a
	// 403 stands for something between the client and Salesforce.
	Status int `json:"status,omitempty"`
	// Error is the OAuth error code. Defaults to "invalid_grant".
	Error string `json:"error,omitempty"`
	// Description is error_description. Defaults to "no client
	// credentials user enabled".
	Description string `json:"description,omitempty"`
	// Until ends the refusal, by [Options.Now]; the zero time refuses until
	// cleared.
	Until time.Time `json:"until,omitzero"`
}

func (g *GrantRefusal) validate() error {
	if g == nil {
		return nil
	}
	if g.Status != 0 && (g.Status < 400 || g.Status > 499) {
		return fmt.Errorf("sfsim: refuseClientCredentials status %d is not a 4xx status", g.Status)
	}
	return nil
}

// answer is the refusal with its defaults filled in.
func (g GrantRefusal) answer() (int, oauthError) {
	if g.Status == 0 {
		g.Status = http.StatusBadRequest
	}
	if g.Error == "" {
		g.Error = DefaultRefusalError
	}
	if g.Description == "" && g.Error == DefaultRefusalError {
		g.Description = DefaultRefusalDescription
	}
	return g.Status, oauthError{Error: g.Error, Description: g.Description}
}

// RefuseClientCredentials makes client_credentials grants fail with r's
// answer until r.Until (by the simulator's clock); nil removes the fault.
// It fails, changing nothing, on a status that is not 4xx.
func (f *Faults) RefuseClientCredentials(r *GrantRefusal) error {
	if err := r.validate(); err != nil {
		return err
	}
	if r != nil {
		cp := *r
		r = &cp
	}
	f.mu.Lock()
	f.cfg.RefuseClientCredentials = r
	f.mu.Unlock()
	return nil
}

// clientCredentialsRefusal returns the answer of a refused
// client_credentials grant at now, and false when grants are allowed. An
// expired refusal is removed.
func (f *Faults) clientCredentialsRefusal(now time.Time) (int, oauthError, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.cfg.RefuseClientCredentials
	if r == nil {
		return 0, oauthError{}, false
	}
	if !r.Until.IsZero() && !now.Before(r.Until) {
		f.cfg.RefuseClientCredentials = nil
		return 0, oauthError{}, false
	}
	status, e := r.answer()
	return status, e, true
}
