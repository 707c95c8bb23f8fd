package auth

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// newKeyFleet starts a simulator with rotation and NATS, and stores, sealed
// with fleetKey, the tokens of two accounts: web_server "prod" (authorized)
// and client_credentials "cc" (a token fetched once). It returns the
// accounts and a function that opens a new worker's store with a key.
func newKeyFleet(t *testing.T, fleetKey *Cipher) (*sfsim.Server, []*Account, func(*Cipher) *KVStore) {
	t.Helper()
	sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true})
	ns := workertest.StartNATS(t)
	prod := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	cc := simAccount(sim, "cc", FlowClientCredentials, sim.MyDomainURL())
	cc.Default = false
	accounts := []*Account{prod, cc}
	storeFor := func(c *Cipher) *KVStore {
		_, js := workertest.JetStream(t, ns)
		return newKVStore(t, js, c, 5*time.Second)
	}
	fleet := storeFor(fleetKey)
	seedAuthorized(t, sim, fleet, "prod")
	cache, err := NewCache(&Config{Accounts: accounts}, CacheOptions{Store: fleet})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := cache.Source("cc")
	if err := callLimits(ctxT(t), ts); err != nil {
		t.Fatal(err)
	}
	return sim, accounts, storeFor
}

// TestWrongKeyIsLoudAndFinal: a worker started with another key than the
// one that sealed the fleet's tokens says so once at error level at start,
// naming the fix, is not ready, and answers jobs with a non-retryable
// error that says what is wrong, without any token request.
func TestWrongKeyIsLoudAndFinal(t *testing.T) {
	t.Parallel()
	fleetKey, wrongKey := testCipher(t), testCipher(t)
	sim, accounts, storeFor := newKeyFleet(t, fleetKey)
	log, buf := workertest.NewLogger()
	cache, err := NewCache(&Config{Accounts: accounts}, CacheOptions{Store: storeFor(wrongKey), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	requests := sim.Stats().TokenRequests

	err = cache.CheckStore(ctx)
	if CodeOf(err) != CodeTokenKey || !strings.Contains(err.Error(), "prod, cc") || !strings.Contains(err.Error(), EnvTokenKey) {
		t.Fatalf("CheckStore = %v; want TOKEN_KEY_MISMATCH naming both accounts and %s", err, EnvTokenKey)
	}
	ready := cache.Ready()
	if ready == nil || !strings.Contains(ready.Error(), fleetKey.KeyID()) || !strings.Contains(ready.Error(), wrongKey.KeyID()) || !strings.Contains(ready.Error(), EnvTokenKeyPrevious) {
		t.Fatalf("Ready = %v; want not ready, naming both key ids and the fix", ready)
	}
	for range 3 {
		for _, name := range []string{"prod", "cc"} {
			ts, _ := cache.Source(name)
			_, err := ts.Token(ctx)
			if CodeOf(err) != CodeTokenKey || IsTransient(err) {
				t.Fatalf("%s: Token = %v; want a final TOKEN_KEY_MISMATCH", name, err)
			}
			// What the job's caller gets.
			je := blocks.AsError(err)
			if je.Code != sfblocks.CodeAuthFailed || je.Retryable || !strings.Contains(je.Message, EnvTokenKey) || strings.Contains(je.Message, "retry later") {
				t.Fatalf("%s: job error %+v; want AUTH_FAILED, not retryable, naming %s", name, je, EnvTokenKey)
			}
			if st := ts.State(); st.State != "failed" || st.ErrorCode != CodeTokenKey {
				t.Fatalf("%s: state %+v", name, st)
			}
		}
	}
	var errorLines []string
	for _, l := range buf.Lines() {
		if strings.Contains(l, `"level":"error"`) {
			errorLines = append(errorLines, l)
		}
	}
	if len(errorLines) != 1 || !strings.Contains(errorLines[0], EnvTokenKey) || !strings.Contains(errorLines[0], `"accounts":["prod","cc"]`) {
		t.Fatalf("error log lines = %d, want one naming the accounts and %s:\n%s", len(errorLines), EnvTokenKey, strings.Join(errorLines, "\n"))
	}
	if n := sim.Stats().TokenRequests - requests; n != 0 {
		t.Fatalf("%d token requests from the worker with the wrong key", n)
	}
}

// TestKeyRotationWithoutReauthorization: the fleet moves from key A to
// key B. Workers given B with A as the previous key open every record,
// re-seal it with B, refresh with the rotated refresh token, and need no
// authorization; afterwards B alone opens everything and A alone nothing.
func TestKeyRotationWithoutReauthorization(t *testing.T) {
	t.Parallel()
	oldKey, oldB64, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	newKey, newB64, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sim, accounts, storeFor := newKeyFleet(t, oldKey)
	ctx := ctxT(t)

	// Step 1: workers still seal with A and can already open B.
	step1, err := CipherFromEnv(envMap(map[string]string{EnvTokenKey: oldB64, EnvTokenKeyPrevious: newB64}))
	if err != nil || step1.KeyID() != oldKey.KeyID() || len(step1.KeyIDs()) != 2 {
		t.Fatalf("step 1 cipher: %v %v", step1.KeyIDs(), err)
	}
	// Step 2: workers seal with B and open A.
	step2, err := CipherFromEnv(envMap(map[string]string{EnvTokenKey: newB64, EnvTokenKeyPrevious: oldB64}))
	if err != nil || step2.KeyID() != newKey.KeyID() {
		t.Fatal(err)
	}
	for i, c := range []*Cipher{step1, step2} {
		cache, err := NewCache(&Config{Accounts: accounts}, CacheOptions{Store: storeFor(c)})
		if err != nil {
			t.Fatal(err)
		}
		if err := cache.CheckStore(ctx); err != nil || cache.Ready() != nil {
			t.Fatalf("step %d: CheckStore = %v, Ready = %v", i+1, err, cache.Ready())
		}
		sim.ExpireAllSessions()
		for _, a := range accounts {
			ts, _ := cache.Source(a.Name)
			if err := callLimits(ctx, ts); err != nil {
				t.Fatalf("step %d, %s: %v", i+1, a.Name, err)
			}
		}
	}
	// Step 3: the previous key is dropped.
	for _, tt := range []struct {
		name   string
		c      *Cipher
		wantOK bool
	}{{"new key alone", newKey, true}, {"old key alone", oldKey, false}} {
		cache, _ := NewCache(&Config{Accounts: accounts}, CacheOptions{Store: storeFor(tt.c)})
		if err := cache.CheckStore(ctx); (err == nil) != tt.wantOK {
			t.Fatalf("%s: CheckStore = %v", tt.name, err)
		}
	}
	st := sim.Stats()
	t.Logf("key rotation: %d refresh grants, %d client_credentials grants, %d authorizations", st.TokenGrants["refresh_token"], st.TokenGrants["client_credentials"], st.TokenGrants["authorization_code"])
	if st.TokenGrants["authorization_code"] != 0 || st.FamiliesRevoked != 0 || st.TokenGrants["refresh_token"] != 2 {
		t.Fatalf("grants %v, families revoked %d; want two refreshes and no authorization", st.TokenGrants, st.FamiliesRevoked)
	}
}

func TestCipherPreviousKeys(t *testing.T) {
	t.Parallel()
	a, aB64, _ := GenerateKey()
	b, bB64, _ := GenerateKey()
	sealedA, _ := a.Seal([]byte("rt"), aad("prod"))
	both := b.WithPrevious(a, b, nil)
	if ids := both.KeyIDs(); len(ids) != 2 || ids[0] != b.KeyID() || ids[1] != a.KeyID() {
		t.Fatalf("KeyIDs = %v", ids)
	}
	pt, previous, err := both.open(sealedA, aad("prod"))
	if err != nil || string(pt) != "rt" || !previous {
		t.Fatalf("open a previous key's value: %q %v %v", pt, previous, err)
	}
	sealedB, _ := both.Seal([]byte("rt"), aad("prod"))
	if _, err := a.Open(sealedB, aad("prod")); err == nil {
		t.Fatal("WithPrevious sealed with a previous key")
	}
	if _, previous, err := both.open(sealedB, aad("prod")); err != nil || previous {
		t.Fatalf("open the current key's value: %v %v", previous, err)
	}
	if _, err := b.Open(sealedA, aad("prod")); err == nil {
		t.Fatal("WithPrevious changed the cipher it was called on")
	}
	dir := t.TempDir()
	file := dir + "/prev"
	if err := os.WriteFile(file, []byte(aB64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantIDs int
		wantErr string
	}{
		{"previous in env", map[string]string{EnvTokenKey: bB64, EnvTokenKeyPrevious: aB64}, 2, ""},
		{"previous in a file", map[string]string{EnvTokenKey: bB64, EnvTokenKeyPreviousFile: file}, 2, ""},
		{"several previous keys", map[string]string{EnvTokenKey: bB64, EnvTokenKeyPrevious: aB64 + "," + base64.StdEncoding.EncodeToString(make([]byte, 32))}, 3, ""},
		{"previous equal to current", map[string]string{EnvTokenKey: bB64, EnvTokenKeyPrevious: bB64}, 1, ""},
		{"previous without current", map[string]string{EnvTokenKeyPrevious: aB64}, 0, EnvTokenKeyPrevious + " is set but " + EnvTokenKey + " is not"},
		{"previous not base64", map[string]string{EnvTokenKey: bB64, EnvTokenKeyPrevious: "%%%"}, 0, "not valid base64"},
		{"previous too short", map[string]string{EnvTokenKey: bB64, EnvTokenKeyPrevious: base64.StdEncoding.EncodeToString(make([]byte, 16))}, 0, "want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CipherFromEnv(envMap(tt.env))
			if tt.wantErr != "" {
				if CodeOf(err) != CodeNoTokenKey || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), aB64) {
					t.Fatalf("err = %v, want NO_TOKEN_KEY mentioning %q (and no key)", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(c.KeyIDs()) != tt.wantIDs || c.KeyID() != b.KeyID() {
				t.Fatalf("KeyIDs = %v, err = %v; want %d ids sealing with %s", c.KeyIDs(), err, tt.wantIDs, b.KeyID())
			}
		})
	}
}
