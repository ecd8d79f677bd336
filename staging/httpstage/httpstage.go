// Package httpstage stages files in from http:// and https:// URLs.
//
// A download goes to a hidden temporary file in the destination directory,
// is checked against the size the server declared and, when the server
// sends one, a Repr-Digest / Content-Digest / Digest checksum, and is then
// fsynced and renamed into place. A download that fails for any reason
// removes its temporary file, so the destination either holds the complete
// file or is untouched. Transient failures (connection dropped mid-body,
// 5xx, 408, 429) are retried with exponential backoff, resuming with a
// Range request when the server advertises byte ranges and a validator.
//
// Oversend: a resumed (206) or chunked response that carries more bytes
// than the size the server declared is refused with an IntegrityError. For
// a plain response with Content-Length, net/http itself never returns more
// than Content-Length bytes (any excess is dropped with the connection, as
// curl does), so the stored file is never longer than declared.
package httpstage

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/internal/atomicfile"
)

// Defaults for the zero Provider.
const (
	DefaultMaxAttempts = 5
	DefaultBackoff     = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	bufSize            = 1 << 20
)

// Provider downloads http and https URLs. The zero value is ready to use.
type Provider struct {
	// Client performs the requests; nil means a client tuned for large
	// transfers. Give a client with custom TLS roots or authentication here.
	Client *http.Client
	// WorkDir resolves relative destination paths; "" means the current
	// directory. Relative paths escaping it with ".." are refused.
	WorkDir string
	// MaxAttempts bounds the number of requests per file (0 means
	// DefaultMaxAttempts).
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled for each further
	// one up to MaxBackoff (0 means the defaults).
	Backoff, MaxBackoff time.Duration
	// NoSync skips the fsync before the final rename. It makes many small
	// downloads several times faster on disks where fsync is slow, at the
	// cost of the crash guarantee: after a machine crash (not a process
	// crash) a file may be present but empty or short. Use it only for
	// scratch directories that are discarded after a crash.
	NoSync bool
}

var _ staging.Provider = (*Provider)(nil)

var (
	defaultClientOnce sync.Once
	defaultClient     *http.Client
)

func (p *Provider) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	defaultClientOnce.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Larger socket-side buffers cut system calls on big files.
		t.ReadBufferSize = 256 << 10
		t.MaxIdleConnsPerHost = 16
		// The body is stored byte for byte; transparent gzip would break
		// size and checksum checks against the declared representation.
		t.DisableCompression = true
		t.ResponseHeaderTimeout = time.Minute
		defaultClient = &http.Client{Transport: t}
	})
	return defaultClient
}

// Schemes returns ["http", "https"].
func (p *Provider) Schemes() []string { return []string{"http", "https"} }

// DownloadOnly reports true: HTTP staging never uploads, so a registry
// refuses http and https output URLs at submit.
func (p *Provider) DownloadOnly() bool { return true }

// StageOut is not supported: HTTP staging is download-only.
func (p *Provider) StageOut(_ context.Context, src string, dst *url.URL) error {
	return &staging.UnsupportedError{Op: "stage out", URL: dst.String(),
		Reason: "HTTP staging is download-only; stage outputs to a file:// path or an rsync/ssh location instead"}
}

// StageIn downloads src to dst (relative to WorkDir). See the package
// documentation for the guarantees. The context bounds the whole transfer,
// retries included.
func (p *Provider) StageIn(ctx context.Context, src *url.URL, dst string) error {
	if s := strings.ToLower(src.Scheme); s != "http" && s != "https" {
		return fmt.Errorf("staging: httpstage cannot fetch %s: only http and https URLs", src)
	}
	dstPath, err := staging.ResolvePath(p.WorkDir, dst)
	if err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src, err)
	}
	f, err := atomicfile.Create(dstPath)
	if err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src, err)
	}
	defer f.Abort()

	t := &transfer{p: p, url: src.String(), f: f, total: -1}
	maxAttempts := p.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	for attempt := 1; ; attempt++ {
		err = t.attempt(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("staging: stage in %s: %w", src, context.Cause(ctx))
		}
		var te transientError
		if !errors.As(err, &te) {
			return err
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("staging: stage in %s: giving up after %d attempts: %w", src, attempt, te.err)
		}
		if err := sleep(ctx, p.backoff(attempt, te.retryAfter)); err != nil {
			return fmt.Errorf("staging: stage in %s: %w", src, context.Cause(ctx))
		}
	}
	if err := t.verify(); err != nil {
		return err
	}
	if err := f.Commit(p.NoSync); err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src, err)
	}
	return nil
}

func (p *Provider) backoff(attempt int, retryAfter time.Duration) time.Duration {
	base, limit := p.Backoff, p.MaxBackoff
	if base <= 0 {
		base = DefaultBackoff
	}
	if limit <= 0 {
		limit = DefaultMaxBackoff
	}
	d := base << (attempt - 1)
	if d > limit || d <= 0 {
		d = limit
	}
	// Jitter spreads out many workers retrying against the same server.
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d && retryAfter <= limit {
		d = retryAfter
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// transientError marks a failure worth retrying.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// transfer is the state of one download across attempts.
type transfer struct {
	p   *Provider
	url string
	f   *atomicfile.File

	off       int64  // bytes written to f so far
	total     int64  // declared file size, -1 if unknown
	validator string // strong ETag or Last-Modified, for If-Range
	canResume bool

	want *digest   // declared checksum of the whole file
	h    hash.Hash // running hash of f[0:off], when want != nil
}

func (t *transfer) attempt(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return fmt.Errorf("staging: stage in %s: %w", t.url, err)
	}
	// Ask for the bytes as stored: a content-coded body would not match
	// the declared length.
	req.Header.Set("Accept-Encoding", "identity")
	resuming := t.off > 0 && t.canResume
	if resuming {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", t.off))
		// If the file changed since the first response, the server sends
		// it whole (200) instead of a range of the new version.
		req.Header.Set("If-Range", t.validator)
	}
	resp, err := t.p.client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if permanent(err) {
			return fmt.Errorf("staging: stage in %s: %w", t.url, err)
		}
		return transientError{err: err}
	}
	defer resp.Body.Close()

	var limit int64 // bytes this response may carry, -1 if unknown
	switch {
	case resp.StatusCode == http.StatusPartialContent && resuming:
		start, end, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != t.off || (t.total >= 0 && size != t.total) {
			return &IntegrityError{URL: t.url, What: "range",
				Want: fmt.Sprintf("bytes %d-/%d", t.off, t.total), Got: resp.Header.Get("Content-Range")}
		}
		limit = end + 1 - start
	case resp.StatusCode == http.StatusOK:
		if t.off > 0 {
			// No resume possible: start over.
			if err := t.restart(); err != nil {
				return err
			}
		}
		t.total = resp.ContentLength
		t.validator = validator(resp.Header)
		t.canResume = t.validator != "" && strings.Contains(strings.ToLower(resp.Header.Get("Accept-Ranges")), "bytes")
		limit = t.total
	default:
		se := &StatusError{URL: t.url, StatusCode: resp.StatusCode, Status: resp.Status}
		if se.Temporary() {
			return transientError{err: se, retryAfter: retryAfter(resp.Header)}
		}
		return se
	}
	if d, ok := fileDigest(resp.Header, resp.StatusCode == http.StatusOK); ok {
		if err := t.expect(d); err != nil {
			return err
		}
	}
	return t.copy(ctx, resp.Body, limit)
}

// restart discards what was downloaded so far.
func (t *transfer) restart() error {
	if err := t.f.Truncate(0); err != nil {
		return fmt.Errorf("staging: stage in %s: %w", t.url, err)
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("staging: stage in %s: %w", t.url, err)
	}
	t.off = 0
	// A full response may be a new version of the file: its checksum, if
	// any, replaces the old one.
	t.want, t.h = nil, nil
	return nil
}

// expect records the declared checksum. If it arrives only on a resumed
// response, the bytes already on disk are hashed first.
func (t *transfer) expect(d digest) error {
	if t.want != nil {
		if t.want.alg == d.alg && !bytes.Equal(t.want.value, d.value) {
			return &IntegrityError{URL: t.url, What: "checksum",
				Want: d.alg + " " + hex.EncodeToString(t.want.value), Got: "a different " + d.header + " on a later response"}
		}
		return nil
	}
	t.want = &d
	t.h = d.newHash()
	if t.off > 0 {
		if _, err := io.Copy(t.h, io.NewSectionReader(t.f, 0, t.off)); err != nil {
			return fmt.Errorf("staging: stage in %s: rereading partial download: %w", t.url, err)
		}
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// copy appends body to the file. Read errors are transient (the next
// attempt resumes or restarts); write errors, such as a full disk, are not.
func (t *transfer) copy(ctx context.Context, body io.Reader, limit int64) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var got int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			got += int64(n)
			if limit >= 0 && got > limit {
				return &IntegrityError{URL: t.url, What: "oversend", Want: strconv.FormatInt(t.declared(limit), 10)}
			}
			if _, err := t.f.Write(buf[:n]); err != nil {
				hint := ""
				if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
					hint = "; free space on the destination filesystem or stage to another directory"
				}
				return fmt.Errorf("staging: stage in %s: writing %s: %w%s", t.url, t.f.Name(), err, hint)
			}
			if t.h != nil {
				t.h.Write(buf[:n])
			}
			t.off += int64(n)
		}
		if rerr == io.EOF {
			if limit >= 0 && got < limit {
				return transientError{err: fmt.Errorf("connection closed after %d of %d bytes: %w", t.off, t.declared(limit), io.ErrUnexpectedEOF)}
			}
			return nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return transientError{err: fmt.Errorf("after %d bytes: %w", t.off, rerr)}
		}
	}
}

func (t *transfer) declared(limit int64) int64 {
	if t.total >= 0 {
		return t.total
	}
	return t.off + limit
}

func (t *transfer) verify() error {
	if t.total >= 0 && t.off != t.total {
		return &IntegrityError{URL: t.url, What: "size", Want: strconv.FormatInt(t.total, 10) + " bytes", Got: strconv.FormatInt(t.off, 10) + " bytes"}
	}
	if t.want != nil {
		sum := t.h.Sum(nil)
		if !bytes.Equal(sum, t.want.value) {
			return &IntegrityError{URL: t.url, What: "checksum",
				Want: t.want.alg + " " + hex.EncodeToString(t.want.value) + " (" + t.want.header + ")",
				Got:  hex.EncodeToString(sum)}
		}
	}
	return nil
}

// validator returns a value for If-Range: a strong ETag, else
// Last-Modified. Weak ETags are not allowed in If-Range.
func validator(h http.Header) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return et
	}
	return h.Get("Last-Modified")
}

// parseContentRange parses "bytes start-end/size" (size may not be "*":
// a resume needs to know the whole length).
func parseContentRange(s string) (start, end, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	start, err1 = strconv.ParseInt(a, 10, 64)
	end, err2 = strconv.ParseInt(b, 10, 64)
	size, err3 = strconv.ParseInt(sz, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || end >= size {
		return 0, 0, 0, false
	}
	return start, end, size, true
}

// permanent reports request errors that retrying cannot fix: an untrusted
// certificate or a host name that does not exist.
func permanent(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var dns *net.DNSError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) ||
		(errors.As(err, &dns) && dns.IsNotFound)
}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
