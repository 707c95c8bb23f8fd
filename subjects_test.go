package sfblocks_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
)

func TestSubjects(t *testing.T) {
	if got := sfblocks.Subject("acme", sfblocks.Search); got != "acme.search" {
		t.Errorf("Subject = %q", got)
	}
	if got := sfblocks.JobsSubject("acme", sfblocks.Insert); got != "acme.jobs.insert" {
		t.Errorf("JobsSubject = %q", got)
	}
	if got := sfblocks.DLQSubject("acme", sfblocks.Insert, "call-42"); got != "acme.dlq.insert."+sfblocks.ResultKey("call-42") {
		t.Errorf("DLQSubject = %q", got)
	}
}

func TestResultKey(t *testing.T) {
	tests := []struct {
		name  string
		given string
	}{
		{"plain", "job-42"},
		{"dots and spaces", "call 42.a:b/c"},
		{"unicode", "appel-été-42"},
		{"longest plain", strings.Repeat("x", 192)},
		{"hashed", strings.Repeat("x", 193)},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := sfblocks.ResultKey(tt.given)
			if strings.ContainsAny(key, ". *>") || key == "" {
				t.Fatalf("ResultKey(%q) = %q is not a valid KV key / subject token", tt.given, key)
			}
			if len(tt.given) <= 192 {
				back, err := base64.RawURLEncoding.DecodeString(key)
				if err != nil || string(back) != tt.given {
					t.Errorf("key %q does not decode back to the id", key)
				}
			} else if !strings.HasPrefix(key, "h=") || len(key) != 2+64 {
				t.Errorf("long id key = %q, want h= and a hex SHA-256", key)
			}
			if other, dup := seen[key]; dup {
				t.Errorf("ids %q and %q share key %q", other, tt.given, key)
			}
			seen[key] = tt.given
		})
	}
}

func TestBlocks(t *testing.T) {
	bs := sfblocks.Blocks()
	if len(bs) != 2 || bs[0] != sfblocks.Search || bs[1] != sfblocks.Insert {
		t.Fatalf("Blocks() = %v", bs)
	}
	bs[0] = "mutated"
	if sfblocks.Blocks()[0] != sfblocks.Search {
		t.Error("Blocks() returns a shared slice")
	}
	if sfblocks.Block("update").Valid() || !sfblocks.Insert.Valid() {
		t.Error("Valid is wrong")
	}
}
