// Package rsync stages files in and out with the rsync program: between
// local paths, to and from an rsync daemon (rsync://host/module/path), and
// over ssh (ssh://[user@]host[:port]/path, or "[user@]host:path" parsed by
// staging.ParseURL).
//
// The rsync binary must be on PATH (Debian package "rsync"); Provider
// methods return ErrNotInstalled otherwise.
//
// Completeness: without --inplace, --partial or --append (none of which
// this package passes) rsync writes each file to a hidden temporary
// ".name.XXXXXX" in the destination directory and renames it over the
// destination only after the whole file arrived and its checksum matched;
// when interrupted by a signal it deletes the temporary. --fsync makes it
// flush the file before the rename. So a failed transfer never leaves a
// partial file under the destination name. A SIGKILLed rsync can leave the
// hidden temporary behind, never the final name.
package rsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parsl-go/parsl/staging"
)

// ErrNotInstalled is returned when no rsync program can be found.
var ErrNotInstalled = errors.New("rsync not found on PATH; install it (Debian/Ubuntu: apt-get install rsync)")

// Provider runs rsync. The zero value is ready to use.
type Provider struct {
	// Program is the rsync binary; "" means "rsync" from PATH.
	Program string
	// RSH is the remote shell command for ssh:// URLs (rsync -e); "" means
	// "ssh". A port in the URL is appended as "-p PORT".
	RSH string
	// WorkDir resolves relative local paths; "" means the current
	// directory. Relative paths escaping it with ".." are refused.
	WorkDir string
	// ExtraArgs are passed to rsync before the paths, e.g. "--bwlimit=…".
	ExtraArgs []string
}

var _ staging.Provider = (*Provider)(nil)

// Schemes returns ["rsync", "ssh"]. Local paths (file URLs) are also
// accepted by StageIn and StageOut, but a Registry should route them to the
// shared-filesystem provider.
func (p *Provider) Schemes() []string { return []string{"rsync", "ssh"} }

// Error reports a failed rsync run: the URL, rsync's exit status and its
// message.
type Error struct {
	Op       string // "stage in" or "stage out"
	URL      string
	ExitCode int
	Stderr   string
	Err      error
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	hint := ""
	switch e.ExitCode {
	case 23:
		hint = " (partial transfer: check that the source exists and is readable)"
	case 5, 10, 12, 255:
		hint = " (could not reach or talk to the remote side: check host, module, and ssh access)"
	case 11:
		hint = " (file I/O error: check space and permissions at the destination)"
	}
	return fmt.Sprintf("staging: %s %s: rsync exited with status %d%s: %s", e.Op, e.URL, e.ExitCode, hint, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// StageIn copies the file at src to the local path dst.
func (p *Provider) StageIn(ctx context.Context, src *url.URL, dst string) error {
	from, rsh, err := p.remoteArg(src)
	if err != nil {
		return err
	}
	to, err := staging.ResolvePath(p.WorkDir, dst)
	if err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src, err)
	}
	// rsync creates the file but not its parent directories.
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src, err)
	}
	return p.run(ctx, "stage in", src.String(), rsh, from, to)
}

// StageOut copies the local file src to dst, creating missing directories
// on the destination side (--mkpath).
func (p *Provider) StageOut(ctx context.Context, src string, dst *url.URL) error {
	from, err := staging.ResolvePath(p.WorkDir, src)
	if err != nil {
		return fmt.Errorf("staging: stage out to %s: %w", dst, err)
	}
	to, rsh, err := p.remoteArg(dst)
	if err != nil {
		return err
	}
	return p.run(ctx, "stage out", dst.String(), rsh, from, to, "--mkpath")
}

// remoteArg converts a URL to rsync's path syntax and, for ssh, the -e
// value.
func (p *Provider) remoteArg(u *url.URL) (arg, rsh string, err error) {
	switch strings.ToLower(u.Scheme) {
	case "rsync":
		// rsync understands its own daemon URLs.
		return u.String(), "", nil
	case "ssh":
		if u.Host == "" {
			return "", "", fmt.Errorf("staging: %s: ssh URL needs a host", u)
		}
		host := u.Hostname()
		if u.User != nil {
			host = u.User.Username() + "@" + host
		}
		path := u.Path
		// "host:rel" (relative to the remote home) is carried as "/~/rel".
		if rel, ok := strings.CutPrefix(path, "/~/"); ok {
			path = rel
		}
		rsh = p.RSH
		if rsh == "" {
			rsh = "ssh"
		}
		if port := u.Port(); port != "" {
			if _, err := strconv.Atoi(port); err != nil {
				return "", "", fmt.Errorf("staging: %s: bad port", u)
			}
			rsh += " -p " + port
		}
		return host + ":" + path, rsh, nil
	case "file", "":
		path, err := staging.ResolvePath(p.WorkDir, staging.LocalPath(u))
		return path, "", err
	}
	return "", "", fmt.Errorf("staging: rsync cannot handle %s: supported schemes are rsync, ssh and file", u)
}

func (p *Provider) run(ctx context.Context, op, rawURL, rsh, from, to string, extra ...string) error {
	prog := p.Program
	if prog == "" {
		prog = "rsync"
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return fmt.Errorf("staging: %s %s: %w", op, rawURL, ErrNotInstalled)
	}
	args := []string{
		"--times",         // keep mtimes so later runs can skip unchanged files
		"--secluded-args", // send paths verbatim: no remote shell word splitting
		"--fsync",         // flush before the rename (see package doc)
	}
	if rsh != "" {
		args = append(args, "--rsh="+rsh)
	}
	args = append(args, extra...)
	args = append(args, p.ExtraArgs...)
	args = append(args, "--", from, to)
	cmd := exec.CommandContext(ctx, path, args...)
	// SIGTERM, not SIGKILL, on cancellation so rsync removes its temporary
	// file; WaitDelay bounds how long we trust it to exit.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("staging: %s %s: %w", op, rawURL, context.Cause(ctx))
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return &Error{Op: op, URL: rawURL, ExitCode: code, Stderr: stderr.String(), Err: err}
}
