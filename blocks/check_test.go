package blocks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfblocks/sfblocks"
)

// Check refuses exactly what a worker's Decode refuses: every sample job.
func TestCheckAgreesWithTheWorker(t *testing.T) {
	t.Parallel()
	ex := newTestExecutor(t, nil)
	for _, block := range sfblocks.Blocks() {
		files, err := filepath.Glob(filepath.Join("..", "testdata", "jobs", string(block), "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("sample jobs of %s: %v", block, err)
		}
		for _, f := range files {
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := ex.Decode(block, payload)
			cerr := Check(block, payload)
			if (werr == nil) != (cerr == nil) || (cerr != nil && cerr.Error() != werr.Error()) {
				t.Errorf("%s: Check %v, worker %v", f, cerr, werr)
			}
			if bad := strings.HasPrefix(filepath.Base(f), "bad-"); bad != (cerr != nil) {
				t.Errorf("%s: Check %v", f, cerr)
			}
			if cerr != nil && !errors.Is(cerr, sfblocks.ErrInvalidRequest) {
				t.Errorf("%s: %v is not INVALID_REQUEST", f, cerr)
			}
		}
	}
}
