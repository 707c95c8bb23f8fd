package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables naming the key that encrypts tokens at rest.
const (
	// EnvTokenKey holds the key as standard base64 of 32 bytes.
	EnvTokenKey = "SFBLOCKS_TOKEN_KEY"
	// EnvTokenKeyFile names a file holding the key (base64, or 32 raw bytes).
	EnvTokenKeyFile = "SFBLOCKS_TOKEN_KEY_FILE"
	// EnvTokenKeyPrevious holds other keys (standard base64 of 32 bytes,
	// comma-separated) that a worker opens tokens with but never seals
	// with: the fleet's other key while the key is rotated.
	EnvTokenKeyPrevious = "SFBLOCKS_TOKEN_KEY_PREVIOUS"
	// EnvTokenKeyPreviousFile names a file holding such keys (base64, one
	// per line or comma-separated, or 32 raw bytes).
	EnvTokenKeyPreviousFile = "SFBLOCKS_TOKEN_KEY_PREVIOUS_FILE"
)

// howToSetKey is appended to every missing/invalid key message.
const howToSetKey = "set " + EnvTokenKey + " to the base64 of 32 random bytes (e.g. `openssl rand -base64 32`), or " + EnvTokenKeyFile + " to a file holding it; every worker of the fleet needs the same key"

// Cipher seals token records with AES-256-GCM. The associated data binds a
// sealed value to its account, so a value copied to another key fails.
// A Cipher may also hold previous keys ([Cipher.WithPrevious]): it opens
// values sealed with them but seals with its own key only. Safe for
// concurrent use.
type Cipher struct {
	aead cipher.AEAD
	id   string // first 4 bytes of SHA-256(key), hex: tells keys apart in errors
	// previous keys open values sealed before a key rotation.
	previous []*Cipher
}

// sealVersion prefixes every sealed value; bump it if the format changes.
const sealVersion = 1

// NewCipher returns a Cipher for a 32-byte key. Fails with NO_TOKEN_KEY if
// the key has another length.
func NewCipher(key []byte) (*Cipher, error) {
	if len(key) != 32 {
		return nil, newError(CodeNoTokenKey, "", fmt.Sprintf("token key has %d bytes, want 32; %s", len(key), howToSetKey), nil)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, newError(CodeNoTokenKey, "", "token key rejected", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, newError(CodeNoTokenKey, "", "token key rejected", err)
	}
	sum := sha256.Sum256(key)
	return &Cipher{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

// KeyID identifies the key (a hash prefix, not the key) for operators
// comparing the workers' configuration. It is the sealing key's.
func (c *Cipher) KeyID() string { return c.id }

// KeyIDs returns the sealing key's id first, then the previous keys' ids.
func (c *Cipher) KeyIDs() []string {
	ids := []string{c.id}
	for _, p := range c.previous {
		ids = append(ids, p.id)
	}
	return ids
}

// WithPrevious returns a Cipher that seals with c's key, as c does, and
// opens values sealed with c's key or with any of prev's. This is how a
// fleet rotates its key without re-authorizing accounts: stores re-seal
// what they open with a previous key ([KVStore.Load]), so the old key can
// be dropped once every record was opened. Previous keys equal to c's are
// ignored; c itself is not changed.
func (c *Cipher) WithPrevious(prev ...*Cipher) *Cipher {
	out := &Cipher{aead: c.aead, id: c.id, previous: append([]*Cipher(nil), c.previous...)}
	for _, p := range prev {
		if p == nil || p.id == c.id || out.holds(p.id) {
			continue
		}
		out.previous = append(out.previous, &Cipher{aead: p.aead, id: p.id})
	}
	return out
}

// holds reports whether id is one of c's previous keys.
func (c *Cipher) holds(id string) bool {
	for _, p := range c.previous {
		if p.id == id {
			return true
		}
	}
	return false
}

// CipherFromEnv builds the Cipher from SFBLOCKS_TOKEN_KEY or
// SFBLOCKS_TOKEN_KEY_FILE, with the keys of SFBLOCKS_TOKEN_KEY_PREVIOUS or
// SFBLOCKS_TOKEN_KEY_PREVIOUS_FILE as previous keys ([Cipher.WithPrevious];
// lookup defaults to os.LookupEnv). With no key set it fails with
// NO_TOKEN_KEY saying how to set one; callers then keep tokens in memory
// only ([NewMemoryStore]). Previous keys without a current key, or keys
// that are not 32 bytes, fail with NO_TOKEN_KEY too.
func CipherFromEnv(lookup func(string) (string, bool)) (*Cipher, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	c, err := currentCipherFromEnv(lookup)
	prev, perr := previousFromEnv(lookup)
	switch {
	case perr != nil:
		return nil, perr
	case err != nil && len(prev) > 0 && errors.Is(err, ErrNoTokenKey) && !keySet(lookup):
		return nil, newError(CodeNoTokenKey, "", EnvTokenKeyPrevious+" is set but "+EnvTokenKey+" is not: the previous key only opens tokens, a worker seals with "+EnvTokenKey, nil)
	case err != nil:
		return nil, err
	}
	return c.WithPrevious(prev...), nil
}

func keySet(lookup func(string) (string, bool)) bool {
	v, ok := lookup(EnvTokenKey)
	f, fok := lookup(EnvTokenKeyFile)
	return ok && v != "" || fok && f != ""
}

// previousFromEnv reads SFBLOCKS_TOKEN_KEY_PREVIOUS (or its _FILE).
func previousFromEnv(lookup func(string) (string, bool)) ([]*Cipher, error) {
	text, from := "", EnvTokenKeyPrevious
	if v, ok := lookup(EnvTokenKeyPrevious); ok && v != "" {
		text = v
	} else if p, ok := lookup(EnvTokenKeyPreviousFile); ok && p != "" {
		from = EnvTokenKeyPreviousFile
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, newError(CodeNoTokenKey, "", EnvTokenKeyPreviousFile+" names a file that cannot be read", err)
		}
		if len(b) == 32 {
			c, err := NewCipher(b)
			if err != nil {
				return nil, err
			}
			return []*Cipher{c}, nil
		}
		text = string(b)
	}
	var out []*Cipher
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' }) {
		key, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			return nil, newError(CodeNoTokenKey, "", from+" holds a key that is not valid base64; "+howToSetKey, nil)
		}
		c, err := NewCipher(key)
		if err != nil {
			return nil, newError(CodeNoTokenKey, "", from+": "+err.(*Error).Message, nil)
		}
		out = append(out, c)
	}
	return out, nil
}

// currentCipherFromEnv reads SFBLOCKS_TOKEN_KEY (or its _FILE).
func currentCipherFromEnv(lookup func(string) (string, bool)) (*Cipher, error) {
	if v, ok := lookup(EnvTokenKey); ok && v != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return nil, newError(CodeNoTokenKey, "", EnvTokenKey+" is not valid base64; "+howToSetKey, nil)
		}
		return NewCipher(key)
	}
	if p, ok := lookup(EnvTokenKeyFile); ok && p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, newError(CodeNoTokenKey, "", EnvTokenKeyFile+" names a file that cannot be read; "+howToSetKey, err)
		}
		if len(b) == 32 {
			return NewCipher(b)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, newError(CodeNoTokenKey, "", "the key file is neither 32 raw bytes nor base64; "+howToSetKey, nil)
		}
		return NewCipher(key)
	}
	return nil, newError(CodeNoTokenKey, "", "no token encryption key, so tokens are kept in memory only and every worker refreshes on its own; to share and persist them "+howToSetKey, nil)
}

// GenerateKey returns a fresh random key and its base64 form. The embedded
// development mode may use it; a fleet needs one key configured on every
// worker instead, or no worker can read another's tokens.
func GenerateKey() (*Cipher, string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, "", err
	}
	c, err := NewCipher(key)
	return c, base64.StdEncoding.EncodeToString(key), err
}

// Seal encrypts plaintext bound to aad: version byte, 4-byte key id,
// 12-byte nonce, ciphertext+tag.
func (c *Cipher) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+4+c.aead.NonceSize(), 1+4+c.aead.NonceSize()+len(plaintext)+c.aead.Overhead())
	out[0] = sealVersion
	id, _ := hex.DecodeString(c.id)
	copy(out[1:5], id)
	nonce := out[5:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return c.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value made by Seal, with the sealing key or a previous
// one. Fails with TOKEN_KEY_MISMATCH when the value was sealed with another
// key, for another account, or altered.
func (c *Cipher) Open(sealed, aad []byte) ([]byte, error) {
	pt, _, err := c.open(sealed, aad)
	return pt, err
}

// open is Open that also reports whether a previous key opened the value,
// so that the caller re-seals it with the current key.
func (c *Cipher) open(sealed, aad []byte) (pt []byte, previous bool, err error) {
	ns := c.aead.NonceSize()
	if len(sealed) < 1+4+ns+c.aead.Overhead() || sealed[0] != sealVersion {
		return nil, false, newError(CodeTokenKey, "", "stored token is not an sfblocks encrypted value (was it written in plaintext or by another program?)", nil)
	}
	k := c
	if id := hex.EncodeToString(sealed[1:5]); id != c.id {
		k = nil
		for _, p := range c.previous {
			if p.id == id {
				k, previous = p, true
			}
		}
		if k == nil {
			have := "key id " + c.id
			if len(c.previous) > 0 {
				have += " (previous: " + strings.Join(c.KeyIDs()[1:], ", ") + ")"
			}
			return nil, false, newError(CodeTokenKey, "", fmt.Sprintf("stored token was encrypted with key id %s but this worker has %s; give every worker the fleet's %s (while rotating the key, the other key as %s)", id, have, EnvTokenKey, EnvTokenKeyPrevious), nil)
		}
	}
	pt, err = k.aead.Open(nil, sealed[5:5+ns], sealed[5+ns:], aad)
	if err != nil {
		return nil, false, newError(CodeTokenKey, "", "stored token failed authentication (altered, or stored under another account's name)", nil)
	}
	return pt, previous, nil
}

// KeyFile returns the cipher of the key kept in the file at path, creating
// the file (mode 0600, its directory 0700) with a fresh key on first use.
// Development mode keeps its key this way beside the embedded server's
// store; production fleets give every worker the same key through
// SFBLOCKS_TOKEN_KEY or SFBLOCKS_TOKEN_KEY_FILE instead.
func KeyFile(path string) (*Cipher, error) {
	lookup := func(k string) (string, bool) {
		if k == EnvTokenKeyFile {
			return path, true
		}
		return "", false
	}
	if _, err := os.Stat(path); err == nil {
		return CipherFromEnv(lookup)
	}
	c, encoded, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: creating the key file's directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(encoded+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("auth: writing the key file: %w", err)
	}
	return c, nil
}
