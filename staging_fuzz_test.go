package parsl

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/parsl-go/parsl/staging"
)

// FuzzStagedPath: whatever URL a task names, its staged copy lands in a
// directory of its own under the staging directory, never above it.
func FuzzStagedPath(f *testing.F) {
	for _, s := range []string{
		"https://h/a/b.txt", "https://h/a/..", "https://h/%2e%2e", "rsync://h/m/", "ftp://h/../../x",
		"alice@h:../x", "ssh://h/~/x/..", "https://h/a%2f..%2f..%2fx", "https://h/.", "https://h",
	} {
		f.Add(s)
	}
	const dir = "/stage/in"
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := staging.ParseURL(raw)
		if err != nil || u.Scheme == "file" {
			return
		}
		p, err := stagedPath(dir, raw, u)
		if err != nil {
			return
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Count(rel, string(filepath.Separator)) != 1 {
			t.Fatalf("%q staged to %s, outside a directory of its own under %s", raw, p, dir)
		}
	})
}
