package memo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeChained writes a journal in dir that references refs, then holds recs.
func writeChained(t *testing.T, dir string, refs []string, recs ...Record) {
	t.Helper()
	j, err := OpenJournal(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.AppendRefs(refs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(recs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestChainFollowsReferences checks that loading the newest journal of a
// chain brings back its ancestors first, even after the base directory is
// moved, that Load alone skips the reference, and that each journal is
// loaded once when all of them are given.
func TestChainFollowsReferences(t *testing.T) {
	base := t.TempDir()
	d1 := filepath.Join(base, "runs", "000", Dir)
	d2 := filepath.Join(base, "runs", "001", Dir)
	d3 := filepath.Join(base, "runs", "002", Dir)
	r1, r2, r3 := testRecord(t, 1, "one"), testRecord(t, 2, "two"), testRecord(t, 1, "one again")
	writeJournal(t, filepath.Join(d1, FileName), r1)
	writeChained(t, d2, []string{d1}, r2)
	writeChained(t, d3, []string{d2}, r3)

	own, err := LoadDir(d3, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, own, []Record{r3})

	moved := filepath.Join(base, "moved")
	if err := os.Rename(filepath.Join(base, "runs"), moved); err != nil {
		t.Fatal(err)
	}
	c := NewChain(noWarn(t))
	got, err := c.Load(filepath.Join(moved, "002", Dir))
	if err != nil {
		t.Fatal(err)
	}
	// Oldest first, so the rewritten key 1 ends as "one again".
	sameRecords(t, got, []Record{r1, r2, r3})
	tab := NewTable()
	tab.PutRecords(got)
	if e, _ := tab.Get(r1.Key); string(e.Raw) != string(r3.Result) {
		t.Errorf("key 1 holds %x, want the newest result %x", e.Raw, r3.Result)
	}

	all := NewChain(noWarn(t))
	var n int
	dirs := []string{filepath.Join(moved, "000", Dir), filepath.Join(moved, "001", Dir), filepath.Join(moved, "002", Dir)}
	for _, d := range dirs {
		recs, err := all.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		n += len(recs)
	}
	if n != 3 {
		t.Errorf("all three given: %d records loaded, want 3", n)
	}
	if roots := all.Roots(filepath.Join(moved, "003", Dir)); len(roots) != 1 || roots[0] != dirs[2] {
		t.Errorf("Roots = %v, want only the newest %s", roots, dirs[2])
	}
	if roots := all.Roots(dirs[2]); len(roots) != 0 {
		t.Errorf("Roots excluding the newest = %v, want none", roots)
	}
}

// TestChainMissingAndCycle checks that a referenced checkpoint that is gone
// costs a warning, not the journal's own records, and that journals that
// reference each other load once each.
func TestChainMissingAndCycle(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	ra, rb := testRecord(t, 1, "a"), testRecord(t, 2, "b")
	writeChained(t, a, []string{b, filepath.Join(base, "gone")}, ra)
	writeChained(t, b, []string{a}, rb)

	var w warnings
	c := NewChain(w.add)
	got, err := c.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, []Record{rb, ra})
	if len(w.msgs) != 1 || !strings.Contains(w.msgs[0], "gone") {
		t.Errorf("warnings %q; want one naming the missing checkpoint", w.msgs)
	}
	if got, err := c.Load(b); err != nil || len(got) != 0 {
		t.Errorf("second Load of the cycle: %d records, %v; want none", len(got), err)
	}
	// b was not read again, so Roots cannot know it reaches a: both stay,
	// which is redundant but loses nothing.
	if roots := c.Roots(filepath.Join(base, "new")); len(roots) == 0 || roots[0] != a {
		t.Errorf("Roots of a cycle = %v, want %s first", roots, a)
	}
	if _, err := NewChain(nil).Load(filepath.Join(base, "gone")); err == nil {
		t.Error("Load of a given directory without a journal succeeded")
	}
}
