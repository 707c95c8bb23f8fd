package worker

import (
	"encoding/json"
	"testing"

	"github.com/sfblocks/sfblocks"
)

func TestKeptValueIsAKeptResult(t *testing.T) {
	for _, fp := range []string{"", "0123456789abcdef0123456789abcdef"} {
		data := []byte(`{"id":"j","status":"ok","duration_ms":1,"attempt":1}`)
		var k sfblocks.KeptResult
		if err := json.Unmarshal(keptValue(fp, data), &k); err != nil || k.Fingerprint != fp || string(k.Reply) != string(data) {
			t.Errorf("keptValue(%q) = %s: %+v, %v", fp, keptValue(fp, data), k, err)
		}
		want, _ := json.Marshal(sfblocks.KeptResult{Fingerprint: fp, Reply: data})
		if string(keptValue(fp, data)) != string(want) {
			t.Errorf("keptValue(%q) = %s, json.Marshal gives %s", fp, keptValue(fp, data), want)
		}
	}
}
