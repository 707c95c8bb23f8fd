package blocks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/sfblocks/sfblocks"
)

// IdempotencyValue is the value an Insert's record gets in its account's
// idempotency field: "sfb-" and 32 hex digits of the SHA-256 of the job's
// identity. It is the same for every run of the job and differs between
// jobs, so an upsert on it can only ever find the record of its own job. It
// fits a Text(255) External ID field and needs no escaping in a URL.
func IdempotencyValue(job sfblocks.JobIdentity) string {
	sum := sha256.Sum256([]byte(job.Key()))
	return "sfb-" + hex.EncodeToString(sum[:16])
}

// fingerprint hashes what a job asks of Salesforce. A search is its
// statement; encoding/json writes an insert's map keys sorted, so the same
// record always hashes the same.
func fingerprint(j *Job) string {
	if j.Block == sfblocks.Search {
		h := sha256.New()
		sosl := "q"
		if j.sosl {
			sosl = "s"
		}
		// Fields separated by a NUL, which none of them can hold.
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%s", j.Block, j.Account, sosl, j.maxRecords, j.statement)
		return hex.EncodeToString(h.Sum(nil)[:16])
	}
	content := struct {
		Block      sfblocks.Block `json:"b"`
		Account    string         `json:"a"`
		SOSL       bool           `json:"l,omitempty"`
		Statement  string         `json:"s,omitempty"`
		MaxRecords int            `json:"m,omitempty"`
		Object     string         `json:"o,omitempty"`
		Fields     map[string]any `json:"f,omitempty"`
		ExtField   string         `json:"xf,omitempty"`
		ExtValue   string         `json:"xv,omitempty"`
	}{Block: j.Block, Account: j.Account, SOSL: j.sosl, Statement: j.statement, MaxRecords: j.maxRecords,
		Object: j.object, Fields: j.fields}
	if !j.idempotent {
		// The idempotency value derives from the identity, not the content.
		content.ExtField, content.ExtValue = j.extField, j.extValue
	}
	data, err := json.Marshal(content)
	if err != nil {
		// Decoded values always encode; a failure here would be a bug, and
		// an empty fingerprint only disables the conflict check.
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}
