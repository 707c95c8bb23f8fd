package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Salesforce's token endpoint error for two refreshes in flight with the
// same refresh token; the only invalid_grant that is transient.
const descAlreadyProcessing = "token request is already being processed"

// grantResult is one token endpoint answer, reduced to what is stored.
type grantResult struct {
	rec     Record
	rotated bool
}

// oauthConfig is the account's Web Server / refresh configuration.
// AuthStyleInParams: Salesforce takes client_id/client_secret in the body,
// and auto-detection would send a second token request after a failure.
func oauthConfig(a *Account, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     a.ClientID,
		ClientSecret: a.ClientSecret.Reveal(),
		Endpoint:     oauth2.Endpoint{AuthURL: a.AuthURL(), TokenURL: a.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  redirectURL,
		Scopes:       a.Scopes,
	}
}

// requestToken performs exactly one token request: a refresh_token grant
// with refreshToken, or a client_credentials grant.
func requestToken(ctx context.Context, hc *http.Client, a *Account, refreshToken Secret, now time.Time) (*grantResult, error) {
	if hc != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	}
	var (
		tok *oauth2.Token
		err error
	)
	switch a.Flow {
	case FlowClientCredentials:
		cc := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret.Reveal(), TokenURL: a.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}
		tok, err = cc.Token(ctx)
	default:
		tok, err = oauthConfig(a, "").TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken.Reveal()}).Token()
	}
	if err != nil {
		return nil, classify(a, err)
	}
	return resultFromToken(tok, refreshToken, now), nil
}

func resultFromToken(tok *oauth2.Token, oldRefresh Secret, now time.Time) *grantResult {
	str := func(k string) string { s, _ := tok.Extra(k).(string); return s }
	r := &grantResult{rec: Record{
		AccessToken: Secret(tok.AccessToken), RefreshToken: Secret(tok.RefreshToken),
		InstanceURL: str("instance_url"), ID: str("id"), Scope: str("scope"), IssuedAt: now,
	}}
	if r.rec.RefreshToken == "" {
		r.rec.RefreshToken = oldRefresh
	}
	r.rotated = !oldRefresh.IsZero() && r.rec.RefreshToken != oldRefresh
	return r
}

// classify turns a token endpoint failure into an *Error without echoing
// the response body or anything the request carried.
func classify(a *Account, err error) *Error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// Network error; *url.Error names only the token URL, no secrets.
		return newError(CodeUnavailable, a.Name, "cannot reach the token endpoint "+a.TokenURL(), err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	cause := &tokenEndpointError{Status: status, Code: re.ErrorCode, Description: re.ErrorDescription}
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		return newError(CodeUnavailable, a.Name, "token endpoint unavailable; retry later", cause)
	case re.ErrorCode == "invalid_grant" && strings.Contains(re.ErrorDescription, descAlreadyProcessing):
		return newError(CodeUnavailable, a.Name, "another refresh with the same refresh token is in flight", cause)
	case status == http.StatusForbidden || re.ErrorCode == "":
		// Salesforce answers its refusals 400 with an OAuth error code: a
		// 403, or an answer without a code, comes from something between
		// (a proxy, a firewall), whose mind can change.
		return newError(CodeAuthRetrying, a.Name, fmt.Sprintf("the token endpoint %s answered HTTP %d without granting a token, as a proxy or firewall between this worker and Salesforce may; if it lasts, check the network path to Salesforce", a.TokenURL(), status), cause)
	case re.ErrorCode == "invalid_client" || re.ErrorCode == "invalid_client_id":
		return newError(CodeAuthFailed, a.Name, "Salesforce rejected the consumer key/secret; fix client_id/client_secret for this account (or the app's OAuth policies)", cause)
	case a.Flow == FlowClientCredentials && strings.Contains(re.ErrorDescription, "not supported on this domain"):
		return newError(CodeAuthFailed, a.Name, "client_credentials must be sent to the org's My Domain URL; set login_url to https://MYDOMAIN.my.salesforce.com", cause)
	case a.Flow == FlowClientCredentials:
		// Such as invalid_grant "no client credentials user enabled":
		// what Salesforce answers until a change of the app's policies
		// has propagated, which it says can take 10 minutes.
		return newError(CodeAuthRetrying, a.Name, fmt.Sprintf("Salesforce refused the client_credentials grant (%s: %s), as it does for up to 10 minutes after the app's policies change; if it lasts, check the app's Client Credentials Flow setting and Run As user", re.ErrorCode, re.ErrorDescription), cause)
	case re.ErrorCode == "unauthorized_client":
		return newError(CodeAuthFailed, a.Name, "Salesforce rejected the consumer key/secret; fix client_id/client_secret for this account (or the app's OAuth policies)", cause)
	default:
		return newError(CodeAuthFailed, a.Name, fmt.Sprintf("Salesforce refused the refresh token; run `sfblocks authorize --account %s` again (or fix the consumer key/secret)", a.Name), cause)
	}
}

// tokenEndpointError is Salesforce's {"error","error_description"} answer.
type tokenEndpointError struct {
	Status      int
	Code        string
	Description string
}

func (e *tokenEndpointError) Error() string {
	return fmt.Sprintf("token endpoint answered %d %s: %s", e.Status, e.Code, e.Description)
}
