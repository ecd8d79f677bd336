//go:build unix

package memo

import (
	"errors"
	"syscall"
)

// isNotDir reports an ENOTDIR: a path component that is a file, which only
// means there is no checkpoint there.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
