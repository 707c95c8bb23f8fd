package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCipherRoundTripAndMismatch(t *testing.T) {
	c1, c2 := testCipher(t), testCipher(t)
	pt := []byte(`{"access_token":"abc"}`)
	sealed, err := c1.Seal(pt, aad("prod"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("abc")) {
		t.Fatal("sealed value contains plaintext")
	}
	got, err := c1.Open(sealed, aad("prod"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tests := []struct {
		name string
		c    *Cipher
		data []byte
		aad  string
		want string
	}{
		{"wrong key", c2, sealed, "prod", "key id " + c1.KeyID()},
		{"other account", c1, sealed, "sandbox", "another account"},
		{"plaintext", c1, pt, "prod", "not an sfblocks encrypted value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Open(tt.data, aad(tt.aad))
			if !errors.Is(err, ErrTokenKey) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want TOKEN_KEY_MISMATCH mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCipherFromEnv(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"env key", map[string]string{EnvTokenKey: base64.StdEncoding.EncodeToString(key)}, ""},
		{"key file", map[string]string{EnvTokenKeyFile: file}, ""},
		{"none", nil, "memory only"},
		{"short", map[string]string{EnvTokenKey: base64.StdEncoding.EncodeToString(key[:16])}, "want 32"},
		{"not base64", map[string]string{EnvTokenKey: "%%%"}, "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CipherFromEnv(envMap(tt.env))
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNoTokenKey) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), EnvTokenKey) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
