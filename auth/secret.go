package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/rs/zerolog"
)

// Redacted is what a [Secret] prints as, whatever the verb or encoder.
const Redacted = "[redacted]"

// Secret holds a consumer secret, access or refresh token, authorization
// code or PKCE verifier. fmt (every verb), encoding/json, encoding (text) and
// zerolog all render it as [Redacted]; only [Secret.Reveal] yields the value,
// so a Secret that strays into a log line, error or reply leaks nothing.
type Secret string

// Reveal returns the secret value. Call it only where the value goes on
// the wire to Salesforce or into encrypted storage.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return `auth.Secret("` + Redacted + `")` }

// Format implements fmt.Formatter so that no verb (%x, %d, %q ...) prints
// the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	if verb == 'q' {
		fmt.Fprintf(f, "%q", Redacted)
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalZerologObject implements zerolog.LogObjectMarshaler.
func (s Secret) MarshalZerologObject(e *zerolog.Event) { e.Bool("redacted", true) }

// fingerprint is a one-way tag of a secret used to recognise a credential
// that Salesforce already refused, without storing or logging the value.
func fingerprint(s string) string {
	if s == "" {
		return ""
	}
	h := sha256.Sum256([]byte("sfblocks-fp:" + s))
	return hex.EncodeToString(h[:12])
}
