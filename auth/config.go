package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Flow is the OAuth flow an account uses to get access tokens.
type Flow string

const (
	// FlowWebServer: an admin authorizes once (`sfblocks authorize`), the
	// stored refresh token then yields access tokens (refresh_token grant).
	FlowWebServer Flow = "web_server"
	// FlowClientCredentials: the External Client App's key and secret yield
	// access tokens directly, as the app's run-as user; no refresh token.
	// Salesforce accepts it only on the org's My Domain URL.
	FlowClientCredentials Flow = "client_credentials"
)

// Well-known login URLs.
const (
	ProductionLoginURL = "https://login.salesforce.com"
	SandboxLoginURL    = "https://test.salesforce.com"
)

// Defaults applied by [LoadConfig] to fields left empty.
const (
	DefaultAPIVersion  = "66.0"
	DefaultRedirectURL = "http://localhost:1717/oauth/callback"
)

// DefaultScopes returns the scopes the Web Server flow requests when an
// account lists none: REST access plus a refresh token that outlives the
// session. Each call returns a fresh slice.
func DefaultScopes() []string { return []string{"api", "refresh_token", "offline_access"} }

// Account is one integration account: an External Client App in one org.
type Account struct {
	// Name identifies the account in jobs, metrics and the token store.
	// Letters, digits, '-' and '_'.
	Name string
	// LoginURL is https://login.salesforce.com (production),
	// https://test.salesforce.com (sandbox) or the org's My Domain URL
	// (required for client_credentials).
	LoginURL string
	// ClientID is the consumer key.
	ClientID string
	// ClientSecret is the consumer secret.
	ClientSecret Secret
	// Flow defaults to web_server.
	Flow Flow
	// APIVersion defaults to DefaultAPIVersion ("66.0").
	APIVersion string
	// Scopes for the Web Server flow; defaults to [DefaultScopes].
	Scopes []string
	// RedirectURL is the callback URL registered on the app, used by
	// `sfblocks authorize`. Defaults to DefaultRedirectURL.
	RedirectURL string
	// SessionTimeout, when > 0, is the org's session timeout: the cache
	// refreshes a token that old ahead of time (at 90%) instead of waiting
	// for Salesforce to reject it. 0 (default): use a token until rejected.
	SessionTimeout time.Duration
	// RefreshToken optionally seeds the token store for web_server accounts
	// deployed with a refresh token obtained elsewhere. A refresh token in
	// the store (written by authorize or by a rotation) takes precedence.
	RefreshToken Secret
	// Default marks the account used when a job names none.
	Default bool
	// AllowHTTP accepts a plain-http LoginURL on a host other than
	// loopback: for the simulator on a private container network only
	// (docker-compose). Real Salesforce is https only. Defaults to false.
	AllowHTTP bool
	// IdempotencyField, when set, names a unique External ID text field
	// (for example SFBlocks_Job_Id__c) that the org's admin added to every
	// object the scenarios insert into. Inserts without external_id are
	// then sent as upserts on it, keyed on the job's identity, so that a
	// job run twice finds its own record: exactly once by construction.
	// Defaults to none.
	IdempotencyField string
}

// TokenURL is the account's OAuth token endpoint.
func (a *Account) TokenURL() string { return a.LoginURL + "/services/oauth2/token" }

// AuthURL is the account's OAuth authorization endpoint.
func (a *Account) AuthURL() string { return a.LoginURL + "/services/oauth2/authorize" }

// Config is the set of configured accounts.
type Config struct {
	Accounts []*Account
}

// Account returns the account called name, or the default account when
// name is "". Fails with UNKNOWN_ACCOUNT.
func (c *Config) Account(name string) (*Account, error) {
	for _, a := range c.Accounts {
		if (name == "" && a.Default) || (name != "" && a.Name == name) {
			return a, nil
		}
	}
	if name == "" {
		return nil, newError(CodeUnknownAccount, "", "no default account configured (set \"default\": true on one account)", nil)
	}
	return nil, newError(CodeUnknownAccount, name, fmt.Sprintf("no such account (configured: %s)", strings.Join(c.names(), ", ")), nil)
}

// Names lists the configured account names in file order.
func (c *Config) names() []string {
	out := make([]string, 0, len(c.Accounts))
	for _, a := range c.Accounts {
		out = append(out, a.Name)
	}
	return out
}

// fileConfig is the JSON form; secrets are literal or "env:VAR"/"file:PATH".
type fileConfig struct {
	Accounts []fileAccount `json:"accounts"`
}

type fileAccount struct {
	Name           string   `json:"name"`
	LoginURL       string   `json:"login_url"`
	ClientID       string   `json:"client_id"`
	ClientSecret   string   `json:"client_secret"`
	Flow           string   `json:"flow"`
	APIVersion     string   `json:"api_version"`
	Scopes         []string `json:"scopes"`
	RedirectURL    string   `json:"redirect_url"`
	SessionTimeout string   `json:"session_timeout"`
	RefreshToken   string   `json:"refresh_token"`
	Default        bool     `json:"default"`
	AllowHTTP      bool     `json:"allow_http"`
	// IdempotencyField: see Account.IdempotencyField.
	IdempotencyField string `json:"idempotency_field"`
}

// Loader reads configuration; its zero value uses the process environment
// and file system.
type Loader struct {
	// LookupEnv defaults to os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile defaults to os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// LoadConfig reads the JSON account file at path ("" for none), applies
// SFBLOCKS_ACCOUNT_<NAME>_<FIELD> environment overrides, resolves secret
// references and validates. See the package documentation for the format.
// Fails with INVALID_CONFIG naming the field and the fix.
func LoadConfig(path string) (*Config, error) { return Loader{}.Load(path) }

// Load is [LoadConfig] with this loader's environment and file system.
func (l Loader) Load(path string) (*Config, error) {
	if l.LookupEnv == nil {
		l.LookupEnv = os.LookupEnv
	}
	if l.ReadFile == nil {
		l.ReadFile = os.ReadFile
	}
	var fc fileConfig
	if path != "" {
		data, err := l.ReadFile(path)
		if err != nil {
			return nil, newError(CodeInvalidConfig, "", "cannot read account file "+path, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fc); err != nil {
			return nil, newError(CodeInvalidConfig, "", "account file "+path+" is not valid JSON in the documented format", err)
		}
	}
	// SFBLOCKS_ACCOUNTS adds accounts defined only by environment variables.
	if v, ok := l.LookupEnv("SFBLOCKS_ACCOUNTS"); ok {
		for _, n := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !hasAccount(fc.Accounts, n) {
				fc.Accounts = append(fc.Accounts, fileAccount{Name: n})
			}
		}
	}
	cfg := &Config{}
	var errs []error
	for i := range fc.Accounts {
		fa := &fc.Accounts[i]
		l.applyEnv(fa)
		a, err := l.resolve(fa)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Accounts = append(cfg.Accounts, a)
	}
	if v, ok := l.LookupEnv("SFBLOCKS_DEFAULT_ACCOUNT"); ok && v != "" {
		for _, a := range cfg.Accounts {
			a.Default = a.Name == v
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func hasAccount(as []fileAccount, name string) bool {
	for _, a := range as {
		if a.Name == name {
			return true
		}
	}
	return false
}

// EnvPrefix returns the environment variable prefix overriding account
// name's settings: SFBLOCKS_ACCOUNT_<NAME>_ with NAME upper-cased and '-'
// turned into '_' (e.g. SFBLOCKS_ACCOUNT_PROD_EU_CLIENT_SECRET).
func EnvPrefix(name string) string {
	return "SFBLOCKS_ACCOUNT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
}

func (l Loader) applyEnv(fa *fileAccount) {
	p := EnvPrefix(fa.Name)
	str := map[string]*string{
		"LOGIN_URL": &fa.LoginURL, "CLIENT_ID": &fa.ClientID, "CLIENT_SECRET": &fa.ClientSecret,
		"FLOW": &fa.Flow, "API_VERSION": &fa.APIVersion, "REDIRECT_URL": &fa.RedirectURL,
		"SESSION_TIMEOUT": &fa.SessionTimeout, "REFRESH_TOKEN": &fa.RefreshToken,
		"IDEMPOTENCY_FIELD": &fa.IdempotencyField,
	}
	for k, dst := range str {
		if v, ok := l.LookupEnv(p + k); ok {
			*dst = v
		}
	}
	if v, ok := l.LookupEnv(p + "SCOPES"); ok {
		fa.Scopes = strings.Fields(v)
	}
	if v, ok := l.LookupEnv(p + "DEFAULT"); ok {
		b, err := strconv.ParseBool(v)
		fa.Default = err == nil && b
	}
}

// resolveSecret turns "env:VAR" / "file:PATH" references into values; any
// other string is taken literally.
func (l Loader) resolveSecret(account, field, ref string) (Secret, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := l.LookupEnv(name)
		if !ok || v == "" {
			return "", newError(CodeInvalidConfig, account, fmt.Sprintf("%s refers to environment variable %s, which is not set (export it, or point %s at a file with \"file:/path\")", field, name, field), nil)
		}
		return Secret(v), nil
	case strings.HasPrefix(ref, "file:"):
		p := strings.TrimPrefix(ref, "file:")
		b, err := l.ReadFile(p)
		if err != nil {
			// The cause is an *fs.PathError: path and errno only, no content.
			return "", newError(CodeInvalidConfig, account, fmt.Sprintf("%s refers to file %s, which cannot be read (check the path and permissions)", field, p), err)
		}
		return Secret(strings.TrimSpace(string(b))), nil
	}
	return Secret(ref), nil
}

func (l Loader) resolve(fa *fileAccount) (*Account, error) {
	a := &Account{
		Name: fa.Name, LoginURL: strings.TrimRight(strings.TrimSpace(fa.LoginURL), "/"), ClientID: fa.ClientID,
		Flow: Flow(fa.Flow), APIVersion: strings.TrimPrefix(fa.APIVersion, "v"), Scopes: fa.Scopes,
		RedirectURL: fa.RedirectURL, Default: fa.Default, AllowHTTP: fa.AllowHTTP,
		IdempotencyField: fa.IdempotencyField,
	}
	var err error
	if a.ClientSecret, err = l.resolveSecret(a.Name, "client_secret", fa.ClientSecret); err != nil {
		return nil, err
	}
	if a.RefreshToken, err = l.resolveSecret(a.Name, "refresh_token", fa.RefreshToken); err != nil {
		return nil, err
	}
	if fa.SessionTimeout != "" {
		d, err := time.ParseDuration(fa.SessionTimeout)
		if err != nil || d < 0 {
			return nil, newError(CodeInvalidConfig, a.Name, fmt.Sprintf("session_timeout %q is not a duration (use e.g. \"2h\" or \"30m\", or leave it empty to use tokens until Salesforce rejects them)", fa.SessionTimeout), nil)
		}
		a.SessionTimeout = d
	}
	if a.Flow == "" {
		a.Flow = FlowWebServer
	}
	if a.APIVersion == "" {
		a.APIVersion = DefaultAPIVersion
	}
	if len(a.Scopes) == 0 {
		a.Scopes = DefaultScopes()
	}
	if a.RedirectURL == "" {
		a.RedirectURL = DefaultRedirectURL
	}
	return a, nil
}

var (
	nameRE       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	apiVersionRE = regexp.MustCompile(`^[0-9]{2,3}\.0$`)
	// A custom field's API name: the idempotency field is one the admin
	// adds.
	fieldRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}__c$`)
)

// Validate checks every account and that exactly one is the default (a
// single account is the default implicitly). All problems are reported
// together, each naming the account, the field and the fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(a *Account, msg string) { errs = append(errs, newError(CodeInvalidConfig, a.Name, msg, nil)) }
	if len(c.Accounts) == 0 {
		return newError(CodeInvalidConfig, "", "no accounts configured (add one to the account file's \"accounts\" list, or name them in SFBLOCKS_ACCOUNTS)", nil)
	}
	seen := map[string]bool{}
	defaults := 0
	for _, a := range c.Accounts {
		if !nameRE.MatchString(a.Name) {
			bad(a, "name must be 1-64 letters, digits, '-' or '_'")
		}
		if seen[a.Name] {
			bad(a, "name is used by two accounts; give each a distinct name")
		}
		seen[a.Name] = true
		if a.Default {
			defaults++
		}
		u, err := url.Parse(a.LoginURL)
		switch {
		case a.LoginURL == "":
			bad(a, "login_url is empty (use "+ProductionLoginURL+", "+SandboxLoginURL+" or the org's My Domain URL)")
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || (u.Path != "" && u.Path != "/"):
			bad(a, fmt.Sprintf("login_url %q is not a base URL like %s", a.LoginURL, ProductionLoginURL))
		case u.Scheme == "http" && !isLoopback(u.Hostname()) && !a.AllowHTTP:
			bad(a, fmt.Sprintf("login_url %q must use https (plain http is accepted on loopback, or with \"allow_http\": true for a simulator on a private network)", a.LoginURL))
		}
		if a.ClientID == "" {
			bad(a, "client_id is empty (copy the consumer key from the External Client App)")
		}
		switch a.Flow {
		case FlowWebServer:
		case FlowClientCredentials:
			if a.ClientSecret.IsZero() {
				bad(a, "client_secret is required for client_credentials (reference it, e.g. \"env:SF_SECRET\" or \"file:/run/secrets/sf\")")
			}
			if err == nil && (strings.EqualFold(u.Host, "login.salesforce.com") || strings.EqualFold(u.Host, "test.salesforce.com")) {
				bad(a, "client_credentials needs the org's My Domain URL in login_url (https://MYDOMAIN.my.salesforce.com); login/test.salesforce.com refuse this grant")
			}
		default:
			bad(a, fmt.Sprintf("flow %q is not supported (use %q or %q)", a.Flow, FlowWebServer, FlowClientCredentials))
		}
		if !apiVersionRE.MatchString(a.APIVersion) {
			bad(a, fmt.Sprintf("api_version %q is not like \"66.0\"", a.APIVersion))
		}
		if a.IdempotencyField != "" && !fieldRE.MatchString(a.IdempotencyField) {
			bad(a, fmt.Sprintf("idempotency_field %q is not a custom field's API name (such as SFBlocks_Job_Id__c)", a.IdempotencyField))
		}
		if r, err := url.Parse(a.RedirectURL); err != nil || r.Host == "" {
			bad(a, fmt.Sprintf("redirect_url %q is not an absolute URL (use the callback URL registered on the app, e.g. %s)", a.RedirectURL, DefaultRedirectURL))
		}
	}
	if len(c.Accounts) == 1 && defaults == 0 {
		c.Accounts[0].Default = true
		defaults = 1
	}
	if defaults != 1 {
		errs = append(errs, newError(CodeInvalidConfig, "", fmt.Sprintf("%d accounts are marked default; mark exactly one with \"default\": true (or set SFBLOCKS_DEFAULT_ACCOUNT)", defaults), nil))
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
