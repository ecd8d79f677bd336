package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

var buildID = sync.OnceValue(func() string {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			}
		}
	}
	sum := "nohash"
	if exe, err := os.Executable(); err == nil {
		if f, err := os.Open(exe); err == nil {
			h := sha256.New()
			if _, err := io.Copy(h, f); err == nil {
				sum = hex.EncodeToString(h.Sum(nil))[:16]
			}
			f.Close()
		}
	}
	return rev + "-" + sum
})

// BuildID identifies this executable: its VCS revision and a hash of its
// bytes. A pool started from another build is refused, because the same app
// name may mean different code.
func BuildID() string { return buildID() }
