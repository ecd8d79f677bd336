package staging

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/parsl-go/parsl/staging/internal/atomicfile"
)

// SharedFS is the provider for file:// URLs and plain paths on a filesystem
// shared by the submitting side and the workers (Parsl's NoOpFileStaging).
// Stage-in of a file that already is at the destination costs nothing;
// otherwise, and on stage-out, it copies through a temporary file and an
// atomic rename.
type SharedFS struct {
	// WorkDir resolves relative destination paths; "" means the current
	// directory.
	WorkDir string
}

// Schemes returns ["file"].
func (SharedFS) Schemes() []string { return []string{"file"} }

// StageIn makes the file at src available at dst. An empty dst, or a dst
// that is the same file as src, means the task will use src in place and
// nothing is copied; src must exist either way so that a missing input is
// reported before the task runs.
func (p SharedFS) StageIn(ctx context.Context, src *url.URL, dst string) error {
	srcPath := LocalPath(src)
	fi, err := os.Stat(srcPath)
	if err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src, err)
	}
	if dst == "" {
		return nil
	}
	dstPath, err := ResolvePath(p.WorkDir, dst)
	if err != nil {
		return err
	}
	if same(fi, dstPath) {
		return nil
	}
	if err := copyFile(ctx, srcPath, dstPath); err != nil {
		return fmt.Errorf("staging: stage in %s to %s: %w", src, dstPath, err)
	}
	return nil
}

// StageOut copies the local file src to the path of dst unless they are
// already the same file.
func (p SharedFS) StageOut(ctx context.Context, src string, dst *url.URL) error {
	srcPath, err := ResolvePath(p.WorkDir, src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(srcPath)
	if err != nil {
		return fmt.Errorf("staging: stage out %s to %s: %w", srcPath, dst, err)
	}
	dstPath := LocalPath(dst)
	if !filepath.IsAbs(dstPath) {
		if dstPath, err = ResolvePath(p.WorkDir, dstPath); err != nil {
			return err
		}
	}
	if same(fi, dstPath) {
		return nil
	}
	if err := copyFile(ctx, srcPath, dstPath); err != nil {
		return fmt.Errorf("staging: stage out %s to %s: %w", srcPath, dst, err)
	}
	return nil
}

func same(src os.FileInfo, dstPath string) bool {
	di, err := os.Stat(dstPath)
	return err == nil && os.SameFile(src, di)
}

// copyBufSize is large so that big files move in few system calls.
const copyBufSize = 1 << 20

func copyFile(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst)
	if err != nil {
		return err
	}
	defer out.Abort()
	buf := make([]byte, copyBufSize)
	for {
		// Check between chunks so a cancelled context stops a large copy.
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return out.Commit(false)
}
