package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "sub", "out.txt")
	f, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("complete")
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatal("destination visible before Commit")
	}
	if err := f.Commit(false); err != nil {
		t.Fatal(err)
	}
	f.Abort() // no-op after Commit
	if b, _ := os.ReadFile(dst); string(b) != "complete" {
		t.Fatalf("got %q", b)
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}

	g, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString("partial")
	g.Abort()
	if b, _ := os.ReadFile(dst); string(b) != "complete" {
		t.Fatalf("aborted write replaced the file: %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
		t.Fatalf("temporary left behind: %v", ents)
	}
}
