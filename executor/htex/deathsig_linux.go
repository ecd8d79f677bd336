package htex

import "syscall"

// deathSignal makes the kernel send SIGTERM to a child interchange when
// the driver dies: the interchange stops as after a shutdown. It backs up
// the child's watch of its stdin pipe.
func deathSignal() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
