package memo

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCheckpointFinders(t *testing.T) {
	run := t.TempDir()
	withCkpt := []string{"000", "002", "999", "1000"}
	for _, n := range withCkpt {
		writeJournal(t, JournalPath(filepath.Join(run, n)), testRecord(t, 1, n))
	}
	// Run dirs without a journal: none at all, an empty checkpoint dir, and a
	// checkpoint that is a file.
	os.MkdirAll(filepath.Join(run, "001"), 0o755)
	os.MkdirAll(filepath.Join(run, "003", Dir), 0o755)
	os.MkdirAll(filepath.Join(run, "004"), 0o755)
	os.WriteFile(filepath.Join(run, "004", Dir), nil, 0o644)
	os.WriteFile(filepath.Join(run, "005"), nil, 0o644) // a file named like a run
	// Non-numeric entries, even with a journal inside, are not runs.
	os.WriteFile(filepath.Join(run, "monitoring.db"), []byte("x"), 0o644)
	writeJournal(t, JournalPath(filepath.Join(run, "abc")), testRecord(t, 1, 1))
	writeJournal(t, JournalPath(filepath.Join(run, "12a")), testRecord(t, 1, 1))

	all, err := AllCheckpoints(run)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range withCkpt {
		want = append(want, filepath.Join(run, n, Dir))
	}
	if !slices.Equal(all, want) {
		t.Fatalf("AllCheckpoints = %q, want %q", all, want)
	}
	last, err := LastCheckpoint(run)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(last, want[3:]) {
		t.Fatalf("LastCheckpoint = %q, want %q", last, want[3:])
	}
	recs, err := LoadDir(last[0], noWarn(t))
	if err != nil || len(recs) != 1 {
		t.Fatalf("LoadDir(last): %v %v", recs, err)
	}

	for _, dir := range []string{filepath.Join(run, "missing"), t.TempDir()} {
		all, err := AllCheckpoints(dir)
		if err != nil || len(all) != 0 {
			t.Fatalf("AllCheckpoints(%s) = %q, %v", dir, all, err)
		}
		last, err := LastCheckpoint(dir)
		if err != nil || len(last) != 0 {
			t.Fatalf("LastCheckpoint(%s) = %q, %v", dir, last, err)
		}
	}
}

func TestCompareRunNumbers(t *testing.T) {
	got := []string{"1000", "10", "007", "999", "7", "0", "000", "00000000000000000000000000000000001", "123456789012345678901234567890"}
	slices.SortFunc(got, compareRunNumbers)
	want := []string{"0", "000", "00000000000000000000000000000000001", "007", "7", "10", "999", "1000", "123456789012345678901234567890"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
