//go:build !unix

package memo

// isNotDir: on other systems a file in the path reports as not-exist.
func isNotDir(error) bool { return false }
