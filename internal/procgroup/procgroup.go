// Package procgroup holds the process-group plumbing shared by the bash
// runner and the local provider: a child that leads its own group and dies
// with its parent where the system allows it, and a group kill that cannot
// hit an unrelated group whose id was recycled.
package procgroup

import (
	"errors"
	"strconv"
	"syscall"
)

// Attr returns the attributes for a child that leads a new process group
// (its pgid is its pid). On Linux the child also gets SIGKILL when the OS
// thread that started it exits (PR_SET_PDEATHSIG): the caller must start
// it from a goroutine locked to its thread (runtime.LockOSThread) and stay
// locked until the child is reaped, or the child dies whenever the Go
// runtime happens to retire that thread. Elsewhere there is no such signal
// (see DiesWithParent).
func Attr() *syscall.SysProcAttr { return attr() }

// DiesWithParent reports whether children started with Attr are killed by
// the kernel when their parent dies (Linux).
const DiesWithParent = diesWithParent

// WaitExited blocks until process pid has exited but leaves it unreaped,
// so that its pid, and with it the id of the group it leads, cannot be
// reused while the caller signals that group; the caller then reaps it as
// usual (exec.Cmd.Wait). It reports false, at once, where the system has
// no such wait (darwin): the caller then signals the group after reaping,
// when only the members left in the group keep its id from reuse.
func WaitExited(pid int) (bool, error) { return waitExited(pid) }

// Kill sends SIGKILL to every process of group pgid. A group that no
// longer exists is not an error.
func Kill(pgid int) error {
	if pgid <= 1 {
		return errors.New("procgroup: refusing to kill process group " + strconv.Itoa(pgid))
	}
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
