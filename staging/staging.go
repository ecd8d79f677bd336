// Package staging moves files named by URL to and from the local filesystem
// where a task runs: the staging providers of Parsl's data management
// (parsl/data_provider). A Provider handles one or more URL schemes; a
// Registry maps a scheme to the provider that claims it.
//
// Providers are plain, blocking transfer functions. Turning a transfer into a
// node of the task graph (a separate staging task, or a wrapper around the
// app) is the caller's job; this package only guarantees that a transfer
// either produces a complete file at its destination or no file at all.
//
// Providers: SharedFS (this package; file URLs and plain paths),
// staging/httpstage (http, https; download only), staging/ftpstage (ftp),
// staging/rsync (rsync:// daemons and ssh, needs the rsync program), and
// staging/defaults, which assembles them into a Registry.
package staging

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Provider moves files between a URL and a local path.
//
// Implementations must be safe for concurrent use, must honour ctx for
// cancellation and deadlines, and must never leave a partially written file
// under the destination name: a failed or cancelled StageIn leaves dst as it
// was before the call.
type Provider interface {
	// Schemes lists the lower-case URL schemes the provider handles.
	Schemes() []string
	// StageIn copies the file at src to the local path dst.
	StageIn(ctx context.Context, src *url.URL, dst string) error
	// StageOut copies the local file src to dst. Providers for read-only
	// schemes return an *UnsupportedError.
	StageOut(ctx context.Context, src string, dst *url.URL) error
}

// ErrUnsupported is matched (with errors.Is) by every *UnsupportedError.
var ErrUnsupported = errors.New("staging: operation not supported")

// UnsupportedError reports an operation a provider cannot perform, such as
// uploading to a read-only scheme.
type UnsupportedError struct {
	Op  string // "stage in" or "stage out"
	URL string
	// Reason says why and what to use instead.
	Reason string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("staging: cannot %s %s: %s", e.Op, e.URL, e.Reason)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// UnknownSchemeError is returned by Registry lookups for a scheme no
// registered provider claims.
type UnknownSchemeError struct {
	Scheme    string
	URL       string // may be empty when only the scheme was known
	Supported []string
}

func (e *UnknownSchemeError) Error() string {
	in := ""
	if e.URL != "" {
		in = " in " + e.URL
	}
	return fmt.Sprintf("unknown URL scheme %q%s; supported: %s", e.Scheme, in, strings.Join(e.Supported, ", "))
}

// Registry maps URL schemes to providers. The zero value is empty and ready
// to use; a Registry is not safe for concurrent Register calls, but lookups
// may run concurrently once registration is done.
type Registry struct {
	byScheme map[string]Provider
}

// NewRegistry returns a registry holding ps. When two providers claim the
// same scheme, the earlier one wins, as Parsl's "first provider that can
// stage the file" rule does.
func NewRegistry(ps ...Provider) *Registry {
	r := &Registry{}
	for _, p := range ps {
		r.Register(p)
	}
	return r
}

// Register adds p for each of its schemes not already claimed.
func (r *Registry) Register(p Provider) {
	if r.byScheme == nil {
		r.byScheme = make(map[string]Provider)
	}
	for _, s := range p.Schemes() {
		s = strings.ToLower(s)
		if _, taken := r.byScheme[s]; !taken {
			r.byScheme[s] = p
		}
	}
}

// Schemes returns the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	out := make([]string, 0, len(r.byScheme))
	for s := range r.byScheme {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the provider for scheme (case-insensitive; "" means file).
func (r *Registry) Lookup(scheme string) (Provider, error) {
	return r.lookup(scheme, "")
}

// ProviderFor returns the provider for u's scheme. Its error names the URL.
func (r *Registry) ProviderFor(u *url.URL) (Provider, error) {
	return r.lookup(u.Scheme, u.String())
}

func (r *Registry) lookup(scheme, rawURL string) (Provider, error) {
	s := strings.ToLower(scheme)
	if s == "" {
		s = "file"
	}
	if p, ok := r.byScheme[s]; ok {
		return p, nil
	}
	return nil, &UnknownSchemeError{Scheme: s, URL: rawURL, Supported: r.Schemes()}
}

// DownloadOnly is implemented by providers that can stage in but never
// out (HTTP). Registry.ProviderForStageOut uses it to refuse an output URL
// when the task is submitted rather than after it has run.
type DownloadOnly interface {
	DownloadOnly() bool
}

// ProviderForStageOut returns the provider for u's scheme if it can stage
// out. The error is an *UnknownSchemeError, or an *UnsupportedError that
// lists the schemes that can be staged out to.
func (r *Registry) ProviderForStageOut(u *url.URL) (Provider, error) {
	p, err := r.ProviderFor(u)
	if err != nil {
		return nil, err
	}
	if downloadOnly(p) {
		var can []string
		for _, s := range r.Schemes() {
			if !downloadOnly(r.byScheme[s]) {
				can = append(can, s)
			}
		}
		return nil, &UnsupportedError{Op: "stage out", URL: u.String(),
			Reason: fmt.Sprintf("%s URLs can only be downloaded; stage outputs out to one of: %s", strings.ToLower(u.Scheme), strings.Join(can, ", "))}
	}
	return p, nil
}

func downloadOnly(p Provider) bool {
	d, ok := p.(DownloadOnly)
	return ok && d.DownloadOnly()
}

// StageIn looks up the provider for src and stages it in to dst.
func (r *Registry) StageIn(ctx context.Context, src *url.URL, dst string) error {
	p, err := r.ProviderFor(src)
	if err != nil {
		return err
	}
	return p.StageIn(ctx, src, dst)
}

// StageOut looks up the provider for dst and stages src out to it.
func (r *Registry) StageOut(ctx context.Context, src string, dst *url.URL) error {
	p, err := r.ProviderFor(dst)
	if err != nil {
		return err
	}
	return p.StageOut(ctx, src, dst)
}

// ParseURL parses a file location as parsl.File accepts it: a URL with a
// scheme, a plain local path (returned as a file URL), or an scp-style
// "[user@]host:path" remote path (returned as an ssh URL, which the rsync
// provider handles; a bare "host:path" would be read as a URL with scheme
// "host", so write ssh://host/path for those). A single-letter "scheme" is treated as part of a path,
// as parsl.File.Scheme does.
func ParseURL(s string) (*url.URL, error) {
	if u, err := url.Parse(s); err == nil && len(u.Scheme) > 1 {
		u.Scheme = strings.ToLower(u.Scheme)
		return u, nil
	}
	if host, path, ok := splitSCP(s); ok {
		u := &url.URL{Scheme: "ssh", Path: path}
		if at := strings.LastIndex(host, "@"); at >= 0 {
			u.User = url.User(host[:at])
			host = host[at+1:]
		}
		u.Host = host
		return u, nil
	}
	if s == "" {
		return nil, fmt.Errorf("staging: empty file location")
	}
	return &url.URL{Scheme: "file", Path: s}, nil
}

// splitSCP recognises rsync/scp "user@host:path": a colon before any
// slash, and a user part. A bare "host:path" is not recognised because it
// cannot be told apart from a URL with scheme "host".
func splitSCP(s string) (host, path string, ok bool) {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !strings.Contains(s[:colon], "@") {
		return "", "", false
	}
	if slash := strings.IndexByte(s, '/'); slash >= 0 && slash < colon {
		return "", "", false
	}
	path = s[colon+1:]
	if !strings.HasPrefix(path, "/") {
		// Relative remote paths are relative to the remote home directory;
		// keep them relative by marking them with a leading "~/".
		path = "/~/" + path
	}
	return s[:colon], path, true
}

// LocalPath returns the filesystem path named by a file URL: u.Path, or
// u.Opaque for "file:relative/path" forms.
func LocalPath(u *url.URL) string {
	if u.Path != "" {
		return u.Path
	}
	return u.Opaque
}

// ErrEscapesWorkDir is matched by destination paths refused by ResolvePath.
var ErrEscapesWorkDir = errors.New("staging: path escapes the working directory")

// ResolvePath resolves a relative path against workDir (the process's
// current directory when workDir is ""). A relative path that climbs out of
// workDir with ".." is refused with an error wrapping ErrEscapesWorkDir, so
// a file name taken from a URL or a task argument cannot write outside the
// task's sandbox. Absolute paths are returned cleaned: the caller chose them
// explicitly. Symbolic links are not resolved.
func ResolvePath(workDir, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("staging: empty destination path")
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	if workDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("staging: resolving %q: %w", p, err)
		}
		workDir = wd
	}
	wd, err := filepath.Abs(workDir)
	if err != nil {
		return "", fmt.Errorf("staging: resolving working directory %q: %w", workDir, err)
	}
	full := filepath.Join(wd, p)
	rel, err := filepath.Rel(wd, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %q resolves outside %s; use a path inside it or an absolute path", ErrEscapesWorkDir, p, wd)
	}
	return full, nil
}
