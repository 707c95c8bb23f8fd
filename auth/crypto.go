package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
)

// howToSetKey is appended to every missing/invalid key message.
const howToSetKey = "set " + EnvTokenKey + " to the base64 of 32 random bytes (e.g. `openssl rand -base64 32`), or " + EnvTokenKeyFile + " to a file holding it; every worker of the fleet needs the same key"

// Cipher seals token records with AES-256-GCM. The associated data binds a
// sealed value to its account, so a value copied to another key fails.
// Safe for concurrent use.
type Cipher struct {
	aead cipher.AEAD
	id   string // first 4 bytes of SHA-256(key), hex: tells keys apart in errors
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
// comparing the workers' configuration.
func (c *Cipher) KeyID() string { return c.id }

// CipherFromEnv builds the Cipher from SFBLOCKS_TOKEN_KEY or
// SFBLOCKS_TOKEN_KEY_FILE (lookup defaults to os.LookupEnv). With neither
// set it fails with NO_TOKEN_KEY saying how to set one; callers then keep
// tokens in memory only ([NewMemoryStore]).
func CipherFromEnv(lookup func(string) (string, bool)) (*Cipher, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
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

// Open decrypts a value made by Seal. Fails with TOKEN_KEY_MISMATCH when
// the value was sealed with another key, for another account, or altered.
func (c *Cipher) Open(sealed, aad []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	if len(sealed) < 1+4+ns+c.aead.Overhead() || sealed[0] != sealVersion {
		return nil, newError(CodeTokenKey, "", "stored token is not an sfblocks encrypted value (was it written in plaintext or by another program?)", nil)
	}
	if id := hex.EncodeToString(sealed[1:5]); id != c.id {
		return nil, newError(CodeTokenKey, "", fmt.Sprintf("stored token was encrypted with key id %s but this worker has key id %s; give every worker the same %s", id, c.id, EnvTokenKey), nil)
	}
	pt, err := c.aead.Open(nil, sealed[5:5+ns], sealed[5+ns:], aad)
	if err != nil {
		return nil, newError(CodeTokenKey, "", "stored token failed authentication (altered, or stored under another account's name)", nil)
	}
	return pt, nil
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
