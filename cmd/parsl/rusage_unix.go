//go:build unix

package main

import (
	"runtime"
	"syscall"
)

// peakRSS returns the peak resident set size of this process in bytes
// (getrusage ru_maxrss), or 0 if it cannot be read.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	n := int64(ru.Maxrss)
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return n // bytes there
	}
	return n * 1024 // KiB on Linux and the BSDs
}
