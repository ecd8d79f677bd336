// Package ftpstage stages files in from and out to ftp:// URLs with a small
// FTP client built on the standard library (passive mode, binary type).
//
// Login is anonymous unless the URL carries user info. As in RFC 1738, the
// URL path is relative to the login directory ("ftp://host/pub/x" fetches
// "pub/x"). Stage-in has the same guarantees as HTTP staging: a temporary
// file in the destination directory, size checked against the server's
// SIZE reply, oversend refused, fsync and rename, transient failures retried
// with backoff and resumed with REST when the server supports it. Stage-out
// uploads to a temporary name and renames it (RNFR/RNTO) so readers on the
// server never see a partial file.
package ftpstage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
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

// Provider transfers ftp:// URLs. The zero value is ready to use.
type Provider struct {
	// WorkDir resolves relative local paths; "" means the current
	// directory. Relative paths escaping it with ".." are refused.
	WorkDir string
	// MaxAttempts bounds the number of connections per file (0 means
	// DefaultMaxAttempts).
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled for each
	// further one up to MaxBackoff (0 means the defaults).
	Backoff, MaxBackoff time.Duration
	// NoSync skips the fsync before the final rename on stage-in (see
	// httpstage.Provider.NoSync).
	NoSync bool
}

var _ staging.Provider = (*Provider)(nil)

// Schemes returns ["ftp"].
func (p *Provider) Schemes() []string { return []string{"ftp"} }

// ReplyError is a negative FTP reply: the URL, the command and the server's
// message.
type ReplyError struct {
	URL     string
	Command string
	Code    int
	Msg     string
}

func (e *ReplyError) Error() string {
	hint := ""
	switch {
	case e.Code == 530:
		hint = "; login refused: put credentials in the URL (ftp://user:pass@host/path) or check the account"
	case e.Code == 550:
		hint = "; check that the path exists and is accessible (FTP URL paths are relative to the login directory)"
	case e.Temporary():
		hint = "; temporary server failure, try again later"
	}
	return fmt.Sprintf("staging: ftp %s: %s: server answered %d %s%s", e.URL, e.Command, e.Code, e.Msg, hint)
}

// Temporary reports a 4xx (transient negative) reply.
func (e *ReplyError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// ErrOversend is returned when the server sends more bytes than its SIZE
// reply declared.
var ErrOversend = errors.New("server sent more bytes than it declared")

// ErrSize is returned when the download's length differs from the SIZE
// the server declared.
var ErrSize = errors.New("downloaded size differs from the declared size")

type transient struct{ err error }

func (e transient) Error() string { return e.err.Error() }
func (e transient) Unwrap() error { return e.err }

// conn is one logged-in control connection.
type conn struct {
	c    net.Conn
	tp   *textproto.Conn
	url  string
	host string
	stop func() bool
}

func dial(ctx context.Context, u *url.URL) (*conn, error) {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "21")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, transient{err}
	}
	// Closing the connection is how a cancelled context interrupts a
	// blocked read or write.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	cn := &conn{c: c, tp: textproto.NewConn(c), url: redacted(u), host: u.Hostname(), stop: stop}
	if _, _, err := cn.tp.ReadResponse(220); err != nil {
		cn.close()
		return nil, cn.wrap("connect", err)
	}
	user, pass := "anonymous", "anonymous@"
	if u.User != nil {
		user = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			pass = pw
		}
	}
	code, _, err := cn.cmd(0, "USER %s", user)
	if err == nil && code == 331 {
		_, _, err = cn.cmd(230, "PASS %s", pass)
	} else if err == nil && code != 230 {
		err = &textproto.Error{Code: code, Msg: "unexpected reply to USER"}
	}
	if err == nil {
		_, _, err = cn.cmd(200, "TYPE I")
	}
	if err != nil {
		cn.close()
		return nil, cn.wrap("login", err)
	}
	return cn, nil
}

func redacted(u *url.URL) string { return u.Redacted() }

func (cn *conn) close() {
	cn.stop()
	cn.tp.Cmd("QUIT") // best effort; the server may already be gone
	cn.c.Close()
}

// cmd sends a command and reads its reply; want 0 accepts any code.
func (cn *conn) cmd(want int, format string, args ...any) (int, string, error) {
	id, err := cn.tp.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	cn.tp.StartResponse(id)
	defer cn.tp.EndResponse(id)
	code, msg, err := cn.tp.ReadResponse(want)
	return code, msg, err
}

// wrap turns a protocol or network error into a ReplyError (transient for
// 4xx) or a transient network error.
func (cn *conn) wrap(command string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		re := &ReplyError{URL: cn.url, Command: command, Code: te.Code, Msg: te.Msg}
		if re.Temporary() {
			return transient{re}
		}
		return re
	}
	return transient{fmt.Errorf("ftp %s: %s: %w", cn.url, command, err)}
}

// dataConn opens a passive data connection (EPSV, else PASV). The PASV
// address's host is ignored in favour of the control connection's, which
// is what works behind NAT and refuses bounce redirection.
func (cn *conn) dataConn(ctx context.Context) (net.Conn, error) {
	port := 0
	if _, msg, err := cn.cmd(229, "EPSV"); err == nil {
		// "Entering Extended Passive Mode (|||port|)"
		if i := strings.Index(msg, "|||"); i >= 0 {
			rest := msg[i+3:]
			if j := strings.IndexByte(rest, '|'); j >= 0 {
				port, _ = strconv.Atoi(rest[:j])
			}
		}
	}
	if port == 0 {
		_, msg, err := cn.cmd(227, "PASV")
		if err != nil {
			return nil, cn.wrap("PASV", err)
		}
		i, j := strings.IndexByte(msg, '('), strings.IndexByte(msg, ')')
		if i < 0 || j < i {
			return nil, cn.wrap("PASV", fmt.Errorf("unparsable reply %q", msg))
		}
		f := strings.Split(msg[i+1:j], ",")
		if len(f) != 6 {
			return nil, cn.wrap("PASV", fmt.Errorf("unparsable reply %q", msg))
		}
		p1, _ := strconv.Atoi(strings.TrimSpace(f[4]))
		p2, _ := strconv.Atoi(strings.TrimSpace(f[5]))
		port = p1<<8 | p2
	}
	var d net.Dialer
	dc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(cn.host, strconv.Itoa(port)))
	if err != nil {
		return nil, transient{fmt.Errorf("ftp %s: data connection: %w", cn.url, err)}
	}
	return dc, nil
}

func (p *Provider) attempts() int {
	if p.MaxAttempts > 0 {
		return p.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (p *Provider) backoff(attempt int) time.Duration {
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
	return d/2 + rand.N(d/2+1)
}

// retry runs f until it succeeds, fails permanently, or runs out of
// attempts.
func (p *Provider) retry(ctx context.Context, op string, u *url.URL, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("staging: %s %s: %w", op, u.Redacted(), context.Cause(ctx))
		}
		var t transient
		if !errors.As(err, &t) {
			return err
		}
		if attempt >= p.attempts() {
			return fmt.Errorf("staging: %s %s: giving up after %d attempts: %w", op, u.Redacted(), attempt, t.err)
		}
		timer := time.NewTimer(p.backoff(attempt))
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("staging: %s %s: %w", op, u.Redacted(), context.Cause(ctx))
		case <-timer.C:
		}
	}
}

func remotePath(u *url.URL) string { return strings.TrimPrefix(u.Path, "/") }

// StageIn downloads src to dst (relative to WorkDir).
func (p *Provider) StageIn(ctx context.Context, src *url.URL, dst string) error {
	if !strings.EqualFold(src.Scheme, "ftp") {
		return fmt.Errorf("staging: ftpstage cannot fetch %s: only ftp URLs", src.Redacted())
	}
	dstPath, err := staging.ResolvePath(p.WorkDir, dst)
	if err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src.Redacted(), err)
	}
	f, err := atomicfile.Create(dstPath)
	if err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src.Redacted(), err)
	}
	defer f.Abort()
	var off int64
	size := int64(-1)
	err = p.retry(ctx, "stage in", src, func() error {
		cn, err := dial(ctx, src)
		if err != nil {
			return err
		}
		defer cn.close()
		name := remotePath(src)
		if _, msg, err := cn.cmd(213, "SIZE %s", name); err == nil {
			if n, perr := strconv.ParseInt(strings.TrimSpace(msg), 10, 64); perr == nil {
				if size >= 0 && n != size {
					// The file changed between attempts: start over.
					off = 0
				}
				size = n
			}
		}
		if off > 0 {
			if _, _, err := cn.cmd(350, "REST %d", off); err != nil {
				off = 0 // no resume support: restart
			}
		}
		if off == 0 {
			if err := f.Truncate(0); err != nil {
				return err
			}
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
		dc, err := cn.dataConn(ctx)
		if err != nil {
			return err
		}
		defer dc.Close()
		// Cancellation must also unblock a transfer stuck on the data
		// connection.
		defer context.AfterFunc(ctx, func() { dc.Close() })()
		// The reply is a preliminary 1xx; the final 226 follows the data.
		if code, msg, err := cn.cmd(0, "RETR %s", name); err != nil || code >= 200 {
			if err == nil {
				err = &textproto.Error{Code: code, Msg: msg}
			}
			return cn.wrap("RETR "+name, err)
		}
		if err := p.copyIn(f.File, dc, &off, size, cn.url); err != nil {
			return err
		}
		dc.Close()
		if _, _, err := cn.tp.ReadResponse(226); err != nil {
			return cn.wrap("RETR "+name, err)
		}
		if size >= 0 && off != size {
			return fmt.Errorf("staging: stage in %s: %w: declared %d bytes, received %d", cn.url, ErrSize, size, off)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := f.Commit(p.NoSync); err != nil {
		return fmt.Errorf("staging: stage in %s: %w", src.Redacted(), err)
	}
	return nil
}

func (p *Provider) copyIn(f *os.File, r io.Reader, off *int64, size int64, u string) error {
	buf := make([]byte, bufSize)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if size >= 0 && *off+int64(n) > size {
				return fmt.Errorf("staging: stage in %s: %w (%d bytes); download refused", u, ErrOversend, size)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				hint := ""
				if errors.Is(err, syscall.ENOSPC) {
					hint = "; free space on the destination filesystem"
				}
				return fmt.Errorf("staging: stage in %s: writing %s: %w%s", u, f.Name(), err, hint)
			}
			*off += int64(n)
		}
		if rerr == io.EOF {
			if size >= 0 && *off < size {
				return transient{fmt.Errorf("data connection closed after %d of %d bytes: %w", *off, size, io.ErrUnexpectedEOF)}
			}
			return nil
		}
		if rerr != nil {
			return transient{fmt.Errorf("after %d bytes: %w", *off, rerr)}
		}
	}
}

// StageOut uploads src to dst: STOR to a hidden temporary name in the same
// remote directory, then RNFR/RNTO to the final name.
func (p *Provider) StageOut(ctx context.Context, src string, dst *url.URL) error {
	if !strings.EqualFold(dst.Scheme, "ftp") {
		return fmt.Errorf("staging: ftpstage cannot upload to %s: only ftp URLs", dst.Redacted())
	}
	srcPath, err := staging.ResolvePath(p.WorkDir, src)
	if err != nil {
		return fmt.Errorf("staging: stage out to %s: %w", dst.Redacted(), err)
	}
	name := remotePath(dst)
	dir, base := path.Split(name)
	tmp := dir + "." + base + "." + strconv.FormatUint(rand.Uint64(), 36) + ".part"
	return p.retry(ctx, "stage out to", dst, func() error {
		in, err := os.Open(srcPath)
		if err != nil {
			return fmt.Errorf("staging: stage out %s to %s: %w", srcPath, dst.Redacted(), err)
		}
		defer in.Close()
		cn, err := dial(ctx, dst)
		if err != nil {
			return err
		}
		defer cn.close()
		dc, err := cn.dataConn(ctx)
		if err != nil {
			return err
		}
		defer dc.Close()
		// Cancellation must also unblock a transfer stuck on the data
		// connection.
		defer context.AfterFunc(ctx, func() { dc.Close() })()
		if code, msg, err := cn.cmd(0, "STOR %s", tmp); err != nil || code >= 200 {
			if err == nil {
				err = &textproto.Error{Code: code, Msg: msg}
			}
			return cn.wrap("STOR "+tmp, err)
		}
		bw := bufio.NewWriterSize(dc, bufSize)
		if _, err := io.Copy(bw, in); err != nil {
			cn.cmd(0, "DELE %s", tmp)
			return transient{fmt.Errorf("ftp %s: upload: %w", cn.url, err)}
		}
		if err := bw.Flush(); err != nil {
			return transient{fmt.Errorf("ftp %s: upload: %w", cn.url, err)}
		}
		dc.Close() // end of data: the server then sends 226
		if _, _, err := cn.tp.ReadResponse(226); err != nil {
			cn.cmd(0, "DELE %s", tmp)
			return cn.wrap("STOR "+tmp, err)
		}
		if _, _, err := cn.cmd(350, "RNFR %s", tmp); err != nil {
			cn.cmd(0, "DELE %s", tmp)
			return cn.wrap("RNFR "+tmp, err)
		}
		if _, _, err := cn.cmd(250, "RNTO %s", name); err != nil {
			cn.cmd(0, "DELE %s", tmp)
			return cn.wrap("RNTO "+name, err)
		}
		return nil
	})
}
