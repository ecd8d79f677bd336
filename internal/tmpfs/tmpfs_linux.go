package tmpfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func mount(t testing.TB, size string) string {
	if os.Geteuid() != 0 {
		t.Skipf("disk-full test: needs root to mount a %s tmpfs (run as root, as .ci/run does)", size)
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("disk-full test: cannot mount a %s tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds a file there: report it, and do not
			// leave the mount behind.
			t.Errorf("unmount %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}
