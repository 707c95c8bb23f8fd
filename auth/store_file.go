package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// FileStore keeps each account's token record in DIR/<account>.token,
// sealed with AES-256-GCM, for a single worker without NATS (or for
// `sfblocks authorize` on that worker's host). Leases and revisions are
// in-process only: two processes sharing a directory are not coordinated,
// use a [KVStore] for a fleet.
type FileStore struct {
	dir    string
	cipher *Cipher
	mu     sync.Mutex
	mem    *MemoryStore // lease semaphore only
}

// NewFileStore returns a FileStore writing to dir (created 0700). Fails
// with NO_TOKEN_KEY without a Cipher.
func NewFileStore(dir string, c *Cipher) (*FileStore, error) {
	if c == nil {
		return nil, newError(CodeNoTokenKey, "", "the token file store needs an encryption key; "+howToSetKey, nil)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, newError(CodeInvalidConfig, "", "cannot create token directory "+dir, err)
	}
	return &FileStore{dir: dir, cipher: c, mem: NewMemoryStore()}, nil
}

func (s *FileStore) path(account string) string { return filepath.Join(s.dir, account+".token") }

// read returns the record and its generation (0 when absent). Caller holds mu.
func (s *FileStore) read(account string) (*Record, uint64, error) {
	rec, gen, _, err := s.readSealed(account)
	return rec, gen, err
}

// readSealed is read that also reports whether a previous key sealed the
// record. Caller holds mu.
func (s *FileStore) readSealed(account string) (*Record, uint64, bool, error) {
	b, err := os.ReadFile(s.path(account))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, newError(CodeUnavailable, account, "cannot read the token file", err)
	}
	parts := strings.SplitN(strings.TrimSpace(string(b)), "\n", 3)
	if len(parts) != 3 || parts[0] != "sfblocks-token-v1" {
		return nil, 0, false, newError(CodeTokenKey, account, "token file "+s.path(account)+" is not in sfblocks format; run `sfblocks authorize --account "+account+"` to replace it", nil)
	}
	gen, err1 := strconv.ParseUint(parts[1], 10, 64)
	sealed, err2 := base64.StdEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return nil, 0, false, newError(CodeTokenKey, account, "token file "+s.path(account)+" is corrupt", nil)
	}
	pt, previous, err := s.cipher.open(sealed, aad(account))
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			ae.Account = account
		}
		return nil, 0, false, err
	}
	rec, err := unmarshalRecord(pt)
	if err != nil {
		return nil, 0, false, newError(CodeTokenKey, account, "token file "+s.path(account)+" is corrupt", nil)
	}
	return rec, gen, previous, nil
}

// write replaces the file atomically (temp file + rename). Caller holds mu.
func (s *FileStore) write(account string, rec *Record, gen uint64) error {
	pt, err := rec.marshal()
	if err != nil {
		return err
	}
	sealed, err := s.cipher.Seal(pt, aad(account))
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, account+".tmp*")
	if err != nil {
		return newError(CodeUnavailable, account, "cannot write the token file", err)
	}
	defer os.Remove(tmp.Name())
	_, err = fmt.Fprintf(tmp, "sfblocks-token-v1\n%d\n%s\n", gen, base64.StdEncoding.EncodeToString(sealed))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path(account))
	}
	if err != nil {
		return newError(CodeUnavailable, account, "cannot write the token file", err)
	}
	return nil
}

// Load implements Store. A record sealed with a previous key is re-sealed
// with the current one, as [KVStore.Load] does.
func (s *FileStore) Load(_ context.Context, account string) (*Record, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, gen, previous, err := s.readSealed(account)
	if err == nil && previous && s.write(account, rec, gen+1) == nil {
		gen++
	}
	return rec, gen, err
}

// Save implements Store.
func (s *FileStore) Save(_ context.Context, account string, rec *Record, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, gen, err := s.read(account)
	if err != nil && rev != 0 {
		return 0, err
	}
	if gen != rev {
		return 0, errConflict
	}
	return gen + 1, s.write(account, rec, gen+1)
}

// Put implements Store.
func (s *FileStore) Put(_ context.Context, account string, rec *Record) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, gen, _ := s.read(account) // an unreadable file is replaced
	return gen + 1, s.write(account, rec, gen+1)
}

// Lease implements Store (in-process only).
func (s *FileStore) Lease(ctx context.Context, account string) (Lease, error) {
	return s.mem.Lease(ctx, account)
}
