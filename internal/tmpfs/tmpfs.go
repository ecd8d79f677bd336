// Package tmpfs gives a test a small file system of its own, so that a
// full disk is real rather than faked: the disk-full tests of the journal,
// the checkpoint and the monitoring store write to one until it is full.
package tmpfs

import "testing"

// Mount mounts a tmpfs of size bytes ("2m", "256k") for the rest of the
// test and returns its directory; it is unmounted when the test ends. It
// skips the test, saying why, where that cannot be done: not root, not
// Linux, or the mount refused.
func Mount(t testing.TB, size string) string {
	t.Helper()
	return mount(t, size)
}
