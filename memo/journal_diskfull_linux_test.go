//go:build linux

package memo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/parsl-go/parsl/internal/tmpfs"
)

// mountTmpfs mounts a tmpfs of the given size ("256k") for one test.
func mountTmpfs(t *testing.T, size string) string { return tmpfs.Mount(t, size) }

// TestJournalDiskFull: an Append that meets a full disk part-way through
// its write leaves the file as it was, and appends succeed again once
// space is freed; Load then sees every record that Append accepted.
func TestJournalDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "256k")
	// A filler leaves ~40 KiB for the journal, and is deleted later.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{'f'}, 216<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, Dir, FileName)
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var want []Record
	pad := strings.Repeat("p", 3000) // not a divisor of the page size
	failed := 0
	for i := 0; failed < 5; i++ {
		r := testRecord(t, i, pad)
		before, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if aerr := j.Append(r); aerr != nil {
			if !errors.Is(aerr, syscall.ENOSPC) {
				t.Fatalf("append %d: %v; want ENOSPC", i, aerr)
			}
			failed++
			after, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if after.Size() != before.Size() {
				t.Fatalf("append %d failed (%v) but the file went from %d to %d bytes; want it cut back", i, aerr, before.Size(), after.Size())
			}
			continue
		}
		if failed > 0 {
			t.Fatalf("append %d succeeded on a full disk", i)
		}
		want = append(want, r)
	}
	if len(want) == 0 {
		t.Fatal("nothing fitted before the disk was full")
	}
	full := len(want)
	got, err := Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, want)

	// Space comes back: the same journal takes records again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		r := testRecord(t, 1000+i, pad)
		if err := j.Append(r); err != nil {
			t.Fatalf("append after freeing space: %v", err)
		}
		want = append(want, r)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, want)
	t.Logf("%d records before the disk was full, %d after it was freed", full, len(want)-full)
}

// TestJournalDiskFullTwoWriters: the torn write of one of two Journals on
// a file is cut back too, so the other's later records stay readable.
func TestJournalDiskFullTwoWriters(t *testing.T) {
	mnt := mountTmpfs(t, "256k")
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{'f'}, 216<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, Dir, FileName)
	js := make([]*Journal, 2)
	for i := range js {
		j, err := OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		js[i] = j
	}
	pad := strings.Repeat("p", 3000)
	var want []Record
	failed := 0
	for i := 0; failed < 4; i++ {
		r := testRecord(t, i, pad)
		if err := js[i%2].Append(r); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append %d: %v; want ENOSPC", i, err)
			}
			failed++
			continue
		}
		want = append(want, r)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r := testRecord(t, 1000+i, pad)
		if err := js[i%2].Append(r); err != nil {
			t.Fatalf("append after freeing space: %v", err)
		}
		want = append(want, r)
	}
	got, err := Load(path, noWarn(t))
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, want)
}
