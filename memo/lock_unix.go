//go:build unix

package memo

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on f and returns its release. Writers
// hold it across a write and the truncate that undoes a partial write, so
// that the truncate never cuts a record another process appended. A file
// system without flock support gives a no-op lock; Append then checks that
// nobody wrote after its torn record before cutting it.
func lockFile(f *os.File) (unlock func(), locked bool, err error) {
	fd := int(f.Fd())
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return func() { syscall.Flock(fd, syscall.LOCK_UN) }, true, nil
	case errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EINVAL):
		return func() {}, false, nil
	default:
		return nil, false, err
	}
}
