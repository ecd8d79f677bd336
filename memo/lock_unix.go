//go:build unix

package memo

import (
	"errors"
	"os"
	"syscall"
)

// Every open Journal holds a shared flock on its file, so that a writer
// whose write was cut short can tell, by asking for an exclusive lock
// without waiting, whether it is the file's only writer: only then may it
// truncate the torn record away without cutting another writer's records.
// The append itself takes no lock, so appends cost no extra system calls.

// flockUnsupported reports a file system without flock (some NFS and
// Lustre mounts).
func flockUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL)
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// tryLockSole takes an exclusive lock on f without waiting. sole reports
// that it got it: no other Journal has the file open. supported is false
// on a file system without flock, where nothing can be known.
func tryLockSole(f *os.File) (sole, supported bool, err error) {
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false, true, nil
	case flockUnsupported(err):
		return false, false, nil
	default:
		return false, true, err
	}
}

// lockShared takes (or goes back to) the shared lock every open Journal
// holds, waiting for a writer that holds the exclusive one.
func lockShared(f *os.File) error { return flock(f, syscall.LOCK_SH) }
