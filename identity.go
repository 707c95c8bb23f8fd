package sfblocks

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// JobIdentity is what makes two jobs the same job: the block, the account
// as the job names it ("" for the worker's default account) and the job's
// id. A Search and an Insert that share an id are two jobs, and so are jobs
// of two accounts with the same id. Kept results, attempts, claims and dead
// letters are all keyed by [JobIdentity.Key], so a job sent again (a
// retried request, a redelivery, a republish) finds its own earlier run and
// never another job's.
type JobIdentity struct {
	Block   Block
	Account string
	ID      string
}

// maxPlainToken is the longest value whose key token is its plain
// base64url encoding; longer values are hashed, to keep keys (subjects)
// short.
const maxPlainToken = 192

// Key returns the identity as a KV key and a run of subject tokens:
// "<block>.<account>.<id>", where the account and the id are written in
// unpadded base64url (so any text makes a valid key, and an operator can
// decode it back), "_" stands for an empty account, and values longer than
// 192 bytes are written "h=" and the hex SHA-256 of the value ('=' and a
// lone "_" never occur in unpadded base64url, so the forms cannot collide).
func (j JobIdentity) Key() string {
	return string(j.Block) + "." + keyToken(j.Account) + "." + keyToken(j.ID)
}

func keyToken(s string) string {
	switch {
	case s == "":
		return "_"
	case len(s) <= maxPlainToken:
		return base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	sum := sha256.Sum256([]byte(s))
	return "h=" + hex.EncodeToString(sum[:])
}

// ParseJobKey reads a key written by [JobIdentity.Key] back. ok is false
// for a key of another form, and for ids or accounts that were hashed
// (their text cannot be recovered; ID or Account then holds the "h=" form).
func ParseJobKey(key string) (id JobIdentity, ok bool) {
	block, rest, found := strings.Cut(key, ".")
	if !found {
		return id, false
	}
	account, jobID, found := strings.Cut(rest, ".")
	if !found || strings.Contains(jobID, ".") {
		return id, false
	}
	id.Block = Block(block)
	var okA, okI bool
	id.Account, okA = fromToken(account)
	id.ID, okI = fromToken(jobID)
	return id, okA && okI
}

func fromToken(t string) (string, bool) {
	switch {
	case t == "_":
		return "", true
	case strings.HasPrefix(t, "h="):
		return t, false
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err == nil
}

// MsgID returns the Nats-Msg-Id a durable job is published with:
// "<block>:<account>:<id>", the account as the job names it. JetStream drops
// a second publish with the same Nats-Msg-Id within the stream's duplicate
// window, so a publisher retrying after a lost PubAck stores the job once;
// the block and the account are part of it so that two blocks' or two
// accounts' jobs sharing an id are both stored. Runtimes in other languages
// set the same header.
func MsgID(j JobIdentity) string {
	return string(j.Block) + ":" + j.Account + ":" + j.ID
}

// KeptResult is the value of a finished job's entry in the results bucket
// (key [JobIdentity.Key]): the job's fingerprint, which tells a job sent
// again from a different job that reuses its id, and the reply it was
// answered with.
type KeptResult struct {
	// Fingerprint identifies the job's content (what it asks of
	// Salesforce), not its id or timeout.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Reply is the job's reply, as it was sent.
	Reply json.RawMessage `json:"reply"`
}
