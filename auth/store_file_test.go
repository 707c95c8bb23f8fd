package auth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileStoreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := testCipher(t)
	s, err := NewFileStore(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	rec := &Record{AccessToken: "AT-file-marker", RefreshToken: "RT-file-marker", IssuedAt: time.Now().UTC()}
	rev, err := s.Save(ctx, "prod", rec, 0)
	if err != nil || rev != 1 {
		t.Fatalf("Save = %d, %v", rev, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "prod.token"))
	if bytes.Contains(raw, []byte("file-marker")) {
		t.Fatal("token file holds plaintext")
	}
	if _, err := s.Save(ctx, "prod", rec, 0); !errors.Is(err, errConflict) {
		t.Fatalf("stale Save err = %v", err)
	}
	got, rev, err := s.Load(ctx, "prod")
	if err != nil || rev != 1 || got.RefreshToken != rec.RefreshToken {
		t.Fatalf("Load = %+v %d %v", got, rev, err)
	}
	other, _ := NewFileStore(dir, testCipher(t))
	if _, _, err := other.Load(ctx, "prod"); !errors.Is(err, ErrTokenKey) {
		t.Fatalf("wrong key err = %v", err)
	}
	if _, err := NewFileStore(dir, nil); !errors.Is(err, ErrNoTokenKey) {
		t.Fatalf("no key err = %v", err)
	}
	// A cache over the file store refreshes and persists the result.
	f := newFakeTokenEndpoint(t, "rt", true)
	a := f.account("prod", FlowWebServer)
	_, _ = s.Put(ctx, "prod", &Record{RefreshToken: "rt"})
	_, ts := newTestCache(t, a, CacheOptions{Store: s})
	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.Load(ctx, "prod")
	if got.AccessToken.Reveal() != tok.AccessToken || got.RefreshToken.Reveal() != f.refresh {
		t.Fatal("refreshed token not persisted")
	}
}
