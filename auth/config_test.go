package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadExampleConfig(t *testing.T) {
	l := Loader{LookupEnv: envMap(map[string]string{"SF_PROD_SECRET": "prod-secret", "SF_BACKOFFICE_SECRET": "cc-secret"})}
	cfg, err := l.Load("testdata/accounts.json")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := cfg.Account("")
	if err != nil || prod.Name != "prod" {
		t.Fatalf("default account = %v, %v", prod, err)
	}
	if prod.ClientSecret.Reveal() != "prod-secret" || prod.TokenURL() != "https://login.salesforce.com/services/oauth2/token" {
		t.Fatalf("prod = %+v", prod)
	}
	sb, _ := cfg.Account("sandbox")
	if sb.ClientSecret.Reveal() != "sandbox-secret-from-file" || sb.SessionTimeout != 2*time.Hour || sb.Flow != FlowWebServer ||
		sb.APIVersion != DefaultAPIVersion || strings.Join(sb.Scopes, " ") != "api refresh_token offline_access" || sb.RedirectURL != DefaultRedirectURL {
		t.Fatalf("sandbox defaults = %+v", sb)
	}
	cc, _ := cfg.Account("backoffice")
	if cc.Flow != FlowClientCredentials || cc.APIVersion != "65.0" {
		t.Fatalf("backoffice = %+v", cc)
	}
	_, err = cfg.Account("nope")
	if !errors.Is(err, ErrUnknownAccount) || !strings.Contains(err.Error(), "prod, sandbox, backoffice") {
		t.Fatalf("unknown account err = %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	l := Loader{LookupEnv: envMap(map[string]string{
		"SF_PROD_SECRET": "prod-secret", "SF_BACKOFFICE_SECRET": "cc-secret",
		"SFBLOCKS_ACCOUNT_PROD_CLIENT_SECRET": "overridden", "SFBLOCKS_ACCOUNT_PROD_API_VERSION": "v64.0",
		"SFBLOCKS_ACCOUNT_SANDBOX_SCOPES": "api refresh_token", "SFBLOCKS_DEFAULT_ACCOUNT": "sandbox",
		"SFBLOCKS_ACCOUNTS": "extra-one", "SFBLOCKS_ACCOUNT_EXTRA_ONE_LOGIN_URL": "https://x.my.salesforce.com",
		"SFBLOCKS_ACCOUNT_EXTRA_ONE_CLIENT_ID": "cid", "SFBLOCKS_ACCOUNT_EXTRA_ONE_CLIENT_SECRET": "env:SF_PROD_SECRET",
		"SFBLOCKS_ACCOUNT_EXTRA_ONE_FLOW": "client_credentials",
	})}
	cfg, err := l.Load("testdata/accounts.json")
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := cfg.Account("prod")
	if prod.ClientSecret.Reveal() != "overridden" || prod.APIVersion != "64.0" || prod.Default {
		t.Fatalf("prod = %+v", prod)
	}
	def, _ := cfg.Account("")
	if def.Name != "sandbox" || strings.Join(def.Scopes, ",") != "api,refresh_token" {
		t.Fatalf("default = %+v", def)
	}
	x, err := cfg.Account("extra-one")
	if err != nil || x.ClientSecret.Reveal() != "prod-secret" || x.Flow != FlowClientCredentials {
		t.Fatalf("extra-one = %+v, %v", x, err)
	}
}

func TestConfigValidation(t *testing.T) {
	base := `{"name":"a","login_url":"https://login.salesforce.com","client_id":"id","client_secret":"s"`
	tests := []struct {
		name    string
		given   string
		env     map[string]string
		wantErr []string
	}{
		{"missing env secret", `{"accounts":[{"name":"a","login_url":"https://login.salesforce.com","client_id":"id","client_secret":"env:NOPE"}]}`, nil, []string{"client_secret", "NOPE", "not set"}},
		{"bad flow", `{"accounts":[` + base + `,"flow":"password"}]}`, nil, []string{`flow "password"`, "web_server"}},
		{"cc on login host", `{"accounts":[` + base + `,"flow":"client_credentials"}]}`, nil, []string{"My Domain"}},
		{"cc without secret", `{"accounts":[{"name":"a","login_url":"https://x.my.salesforce.com","client_id":"id","flow":"client_credentials"}]}`, nil, []string{"client_secret is required"}},
		{"no client id", `{"accounts":[{"name":"a","login_url":"https://login.salesforce.com"}]}`, nil, []string{"client_id is empty"}},
		{"bad login url", `{"accounts":[{"name":"a","login_url":"login.salesforce.com/x","client_id":"i"}]}`, nil, []string{"login_url"}},
		{"http login url", `{"accounts":[{"name":"a","login_url":"http://example.com","client_id":"i"}]}`, nil, []string{"must use https"}},
		{"bad name", `{"accounts":[{"name":"a b","login_url":"https://login.salesforce.com","client_id":"i"}]}`, nil, []string{"name must be"}},
		{"two defaults", `{"accounts":[` + base + `,"default":true},{"name":"b","login_url":"https://login.salesforce.com","client_id":"i","default":true}]}`, nil, []string{"2 accounts are marked default"}},
		{"no default", `{"accounts":[` + base + `},{"name":"b","login_url":"https://login.salesforce.com","client_id":"i"}]}`, nil, []string{"0 accounts are marked default"}},
		{"bad timeout", `{"accounts":[` + base + `,"session_timeout":"soon"}]}`, nil, []string{"session_timeout", "2h"}},
		{"bad api version", `{"accounts":[` + base + `,"api_version":"66"}]}`, nil, []string{"api_version"}},
		{"unknown field", `{"accounts":[` + base + `,"secret":"x"}]}`, nil, []string{"not valid JSON"}},
		{"no accounts", `{"accounts":[]}`, nil, []string{"no accounts configured"}},
		{"ok single implicit default", `{"accounts":[` + base + `}]}`, nil, nil},
		{"ok http with allow_http", `{"accounts":[{"name":"a","login_url":"http://sim:8443","client_id":"i","client_secret":"s","flow":"client_credentials","allow_http":true}]}`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Loader{LookupEnv: envMap(tt.env), ReadFile: func(string) ([]byte, error) { return []byte(tt.given), nil }}
			cfg, err := l.Load("accounts.json")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if a, _ := cfg.Account(""); a == nil || a.Name != "a" {
					t.Fatal("single account is not the default")
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want INVALID_CONFIG", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), `"s"`) {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
}
