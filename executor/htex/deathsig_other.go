//go:build !linux

package htex

import "syscall"

// deathSignal is nil where there is no parent-death signal: the child
// interchange's watch of its stdin pipe is what ends it with the driver.
func deathSignal() *syscall.SysProcAttr { return nil }
