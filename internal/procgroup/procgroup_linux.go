package procgroup

import (
	"errors"
	"syscall"
	"unsafe"
)

const diesWithParent = true

func attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// pPID is waitid's idtype for "the process with this pid" (P_PID).
const pPID = 1

func waitExited(pid int) (bool, error) {
	// siginfo_t is 128 bytes on every Linux architecture; its contents are
	// not needed, only the wait.
	var info [128]byte
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info)),
			syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch {
		case e == 0:
			return true, nil
		case errors.Is(e, syscall.EINTR):
			continue
		default:
			return false, e
		}
	}
}
