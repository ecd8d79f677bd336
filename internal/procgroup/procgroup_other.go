//go:build unix && !linux

package procgroup

import "syscall"

const diesWithParent = false

func attr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func waitExited(int) (bool, error) { return false, nil }
