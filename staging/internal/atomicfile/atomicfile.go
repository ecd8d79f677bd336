// Package atomicfile writes a file under a temporary name next to its
// destination and renames it into place only once it is complete and on
// disk, so a reader never sees a partial file under the final name.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is a temporary file that becomes dst on Commit.
type File struct {
	*os.File
	dst  string
	done bool
}

// Create makes the destination's directory if needed and opens a temporary
// file in it. The temporary name is hidden and ends in ".part" so that
// globbing tools and humans do not mistake it for the finished file; it
// lives in the same directory so the final rename is atomic (same
// filesystem).
func Create(dst string) (*File, error) {
	dir, base := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating directory for %s: %w", dst, err)
	}
	f, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return nil, fmt.Errorf("creating temporary file for %s: %w", dst, err)
	}
	return &File{File: f, dst: dst}, nil
}

// Commit flushes the data to stable storage (unless noSync), closes the
// file and renames it to the destination, replacing any previous file.
//
// The fsync before the rename is what makes the guarantee hold across a
// machine crash: without it the rename can reach the disk before the data
// and leave an empty or short file under the final name. The directory is
// not fsynced: that would only make the rename itself durable (a crash
// could otherwise lose the new name, which is safe - the staging is redone)
// and it doubles the cost per file.
func (f *File) Commit(noSync bool) error {
	if f.done {
		return fmt.Errorf("atomicfile: %s already committed or aborted", f.dst)
	}
	f.done = true
	// CreateTemp uses 0600; staged files are ordinary data files.
	err := f.Chmod(0o644)
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), f.dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("finishing %s: %w", f.dst, err)
	}
	return nil
}

// Abort closes and removes the temporary file. It is a no-op after Commit,
// so it can be deferred unconditionally.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}
