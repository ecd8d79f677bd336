// Package defaults assembles the standard staging registry: the shared
// filesystem for file URLs and plain paths, HTTP(S) download, FTP, and
// rsync (daemon and ssh).
package defaults

import (
	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/ftpstage"
	"github.com/parsl-go/parsl/staging/httpstage"
	"github.com/parsl-go/parsl/staging/rsync"
)

// Registry returns a registry for file, ftp, http, https, rsync and ssh URLs,
// resolving relative local paths against workDir ("" = current directory).
func Registry(workDir string) *staging.Registry {
	return staging.NewRegistry(
		staging.SharedFS{WorkDir: workDir},
		&httpstage.Provider{WorkDir: workDir},
		&ftpstage.Provider{WorkDir: workDir},
		&rsync.Provider{WorkDir: workDir},
	)
}
