package auth_test

import (
	"fmt"

	"github.com/sfblocks/sfblocks/auth"
)

func ExampleSecret() {
	s := auth.Secret("00Dxx!AQ4AQ...")
	fmt.Println(s, fmt.Sprintf("%q %#v", s, s))
	// Output: [redacted] "[redacted]" auth.Secret("[redacted]")
}

func ExampleLoader() {
	env := map[string]string{"SF_PROD_SECRET": "s1", "SF_BACKOFFICE_SECRET": "s2", "SFBLOCKS_ACCOUNT_PROD_API_VERSION": "65.0"}
	l := auth.Loader{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	cfg, err := l.Load("testdata/accounts.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	a, _ := cfg.Account("") // the default account
	fmt.Println(a.Name, a.Flow, a.APIVersion, a.ClientSecret)
	_, err = cfg.Account("missing")
	fmt.Println(auth.CodeOf(err))
	// Output:
	// prod web_server 65.0 [redacted]
	// UNKNOWN_ACCOUNT
}
