//go:build !unix

package memo

import "os"

// Without flock nothing tells a writer whether it is a file's only one;
// Append then only checks that nobody wrote after its torn record before
// cutting it.
func tryLockSole(*os.File) (sole, supported bool, err error) { return false, false, nil }

func lockShared(*os.File) error { return nil }
