package memlimit

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot writes files (path → content) under a new directory.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestChoose(t *testing.T) {
	const gib = 1 << 30
	v2 := map[string]string{"proc/self/cgroup": "0::/kubepods/pod1/c1\n"}
	tests := []struct {
		name      string
		setting   string
		files     map[string]string
		gomemlim  string
		wantBytes int64
		wantErr   bool
	}{
		{name: "auto, cgroup v2 limit", setting: Auto, files: merge(v2, map[string]string{
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "1073741824\n"}), wantBytes: gib * 9 / 10},
		{name: "auto, cgroup v2: a parent's limit is tighter", setting: Auto, files: merge(v2, map[string]string{
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":    "536870912\n"}), wantBytes: gib / 2 * 9 / 10},
		{name: "auto, cgroup v2 in a container: the mount's root is the cgroup", setting: Auto, files: merge(v2, map[string]string{
			"sys/fs/cgroup/memory.max": "1073741824\n"}), wantBytes: gib * 9 / 10},
		{name: "auto, cgroup v2 without a limit", setting: Auto, files: merge(v2, map[string]string{
			"sys/fs/cgroup/memory.max": "max\n"})},
		{name: "auto, cgroup v1 limit", setting: Auto, files: map[string]string{
			"proc/self/cgroup": "5:cpu,cpuacct:/\n4:memory:/docker/abc\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "2147483648\n"}, wantBytes: 2 * gib * 9 / 10},
		{name: "auto, cgroup v1 without a limit", setting: Auto, files: map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}},
		{name: "auto, no cgroup files", setting: Auto},
		{name: "auto leaves GOMEMLIMIT to the runtime", setting: Auto, gomemlim: "100MiB", files: merge(v2, map[string]string{
			"sys/fs/cgroup/memory.max": "1073741824\n"})},
		{name: "off", setting: "off", files: merge(v2, map[string]string{"sys/fs/cgroup/memory.max": "1073741824\n"})},
		{name: "a size in MiB", setting: "512MiB", wantBytes: 512 << 20},
		{name: "bytes", setting: "1000000", wantBytes: 1000000},
		{name: "not a size", setting: "lots", wantErr: true},
		{name: "negative", setting: "-1GiB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeRoot(t, tt.files)
			got, err := Choose(tt.setting, root, func(k string) string {
				if k == "GOMEMLIMIT" {
					return tt.gomemlim
				}
				return ""
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got.Bytes != tt.wantBytes {
				t.Fatalf("limit %d (%s), want %d", got.Bytes, got.Why, tt.wantBytes)
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
