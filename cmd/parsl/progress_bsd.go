//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package main

import "golang.org/x/sys/unix"

// ioctlGetTermios is the request that reads a terminal's attributes; it
// fails on anything that is not a terminal.
const ioctlGetTermios = unix.TIOCGETA
