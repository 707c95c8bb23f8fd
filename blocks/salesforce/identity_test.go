package salesforce_test

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/oauth2"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

func TestUserID(t *testing.T) {
	tests := []struct {
		name    string
		id      any
		want    string
		wantErr bool
	}{
		{"identity URL", "https://login.salesforce.com/id/00D000000000001EAA/005Hs0000000001IAA", "005Hs0000000001IAA", false},
		{"test.salesforce.com", "https://test.salesforce.com/id/00D000000000001EAA/005Hs0000000001", "005Hs0000000001", false},
		{"missing", nil, "", true},
		{"not an identity URL", "https://login.salesforce.com/services/oauth2/userinfo", "", true},
		{"not an id", "https://login.salesforce.com/id/00D000000000001EAA/x'%20OR", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := (&oauth2.Token{AccessToken: "t"}).WithExtra(map[string]any{"instance_url": "https://x.my.salesforce.com", "id": tt.id})
			c, err := salesforce.New(tokenFunc(func(context.Context) (*oauth2.Token, error) { return tok, nil }))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.UserID(context.Background())
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("UserID = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, salesforce.ErrNoIdentity) {
				t.Errorf("err = %v, want ErrNoIdentity", err)
			}
		})
	}
}

type tokenFunc func(context.Context) (*oauth2.Token, error)

func (f tokenFunc) Token(ctx context.Context) (*oauth2.Token, error) { return f(ctx) }
