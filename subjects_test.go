package sfblocks_test

import (
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
	job := sfblocks.JobIdentity{Block: sfblocks.Insert, Account: "prod", ID: "call-42"}
	if got := sfblocks.DLQSubject("acme", job); got != "acme.dlq."+job.Key() || !strings.HasPrefix(got, "acme.dlq.insert.") {
		t.Errorf("DLQSubject = %q", got)
	}
	if got := sfblocks.MsgID(job); got != "insert:prod:call-42" {
		t.Errorf("MsgID = %q", got)
	}
}

func TestJobIdentityKey(t *testing.T) {
	tests := []struct {
		name  string
		given sfblocks.JobIdentity
		want  string // "" when only the properties are checked
		back  bool   // ParseJobKey gives the identity back
	}{
		{"plain", sfblocks.JobIdentity{Block: sfblocks.Insert, Account: "prod", ID: "job-42"}, "insert.cHJvZA.am9iLTQy", true},
		{"default account", sfblocks.JobIdentity{Block: sfblocks.Search, ID: "job-42"}, "search._.am9iLTQy", true},
		{"dots, spaces and unicode", sfblocks.JobIdentity{Block: sfblocks.Search, Account: "a.b", ID: "call 42.a:b/c-été"}, "", true},
		{"longest plain id", sfblocks.JobIdentity{Block: sfblocks.Insert, ID: strings.Repeat("x", 192)}, "", true},
		{"hashed id", sfblocks.JobIdentity{Block: sfblocks.Insert, ID: strings.Repeat("x", 193)}, "", false},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.given.Key()
			if tt.want != "" && key != tt.want {
				t.Errorf("Key() = %q, want %q", key, tt.want)
			}
			for _, tok := range strings.Split(key, ".") {
				if tok == "" || strings.ContainsAny(tok, " *>") {
					t.Fatalf("Key() = %q is not a valid KV key / subject", key)
				}
			}
			if n := strings.Count(key, "."); n != 2 {
				t.Errorf("Key() = %q has %d dots, want 2", key, n)
			}
			got, ok := sfblocks.ParseJobKey(key)
			if ok != tt.back || (ok && got != tt.given) {
				t.Errorf("ParseJobKey(%q) = %+v, %v; want %+v, %v", key, got, ok, tt.given, tt.back)
			}
			if other, dup := seen[key]; dup {
				t.Errorf("%s and %s share key %q", other, tt.name, key)
			}
			seen[key] = tt.name
		})
	}
	// Same id, other block or account: other jobs.
	a := sfblocks.JobIdentity{Block: sfblocks.Search, Account: "A", ID: "call-42"}
	for _, b := range []sfblocks.JobIdentity{{Block: sfblocks.Insert, Account: "A", ID: "call-42"}, {Block: sfblocks.Search, Account: "B", ID: "call-42"}, {Block: sfblocks.Search, ID: "call-42"}} {
		if a.Key() == b.Key() {
			t.Errorf("%+v and %+v share a key", a, b)
		}
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
