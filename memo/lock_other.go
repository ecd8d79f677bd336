//go:build !unix

package memo

import "os"

// lockFile has no cross-process lock here; Append checks that nobody wrote
// after a torn record before cutting it.
func lockFile(*os.File) (unlock func(), locked bool, err error) { return func() {}, false, nil }
