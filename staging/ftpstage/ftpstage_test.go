package ftpstage_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/ftpstage"
)

// ftpServer is a minimal passive-mode FTP server over a directory, with
// fault injection. It is just enough of RFC 959 for the client.
type ftpServer struct {
	root     string
	l        net.Listener
	dieAt    atomic.Int64 // >0: the next RETR drops its data connection after this many bytes
	oversend int          // extra bytes appended to every RETR
	noRest   bool
	password string // "" = anonymous allowed
	noEPSV   bool

	mu   sync.Mutex
	cmds []string
}

func newFTPServer(t *testing.T) *ftpServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &ftpServer{root: t.TempDir(), l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return s
}

func (s *ftpServer) url(p string) *url.URL {
	u, _ := url.Parse("ftp://" + s.l.Addr().String() + "/" + p)
	return u
}

func (s *ftpServer) seen(prefix string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cmds {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func (s *ftpServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(format string, a ...any) { fmt.Fprintf(c, format+"\r\n", a...) }
	reply("220 test ftp")
	var pasv net.Listener
	var rest int64
	var rnfr, user string
	authed := false
	local := func(p string) string { return filepath.Join(s.root, filepath.Clean("/"+p)) }
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		cmd = strings.ToUpper(cmd)
		s.mu.Lock()
		s.cmds = append(s.cmds, cmd+" "+arg)
		s.mu.Unlock()
		if !authed && cmd != "USER" && cmd != "PASS" && cmd != "QUIT" {
			reply("530 not logged in")
			continue
		}
		switch cmd {
		case "USER":
			user = arg
			reply("331 password please")
		case "PASS":
			if s.password != "" && (user != "bob" || arg != s.password) {
				reply("530 login incorrect")
				continue
			}
			authed = true
			reply("230 ok")
		case "TYPE":
			reply("200 ok")
		case "SIZE":
			fi, err := os.Stat(local(arg))
			if err != nil {
				reply("550 no such file")
				continue
			}
			reply("213 %d", fi.Size())
		case "EPSV", "PASV":
			if cmd == "EPSV" && s.noEPSV {
				reply("502 no")
				continue
			}
			if pasv != nil {
				pasv.Close()
			}
			pasv, _ = net.Listen("tcp", "127.0.0.1:0")
			port := pasv.Addr().(*net.TCPAddr).Port
			if cmd == "EPSV" {
				reply("229 Entering Extended Passive Mode (|||%d|)", port)
			} else {
				reply("227 Entering Passive Mode (127,0,0,1,%d,%d)", port>>8, port&255)
			}
		case "REST":
			if s.noRest {
				reply("502 no REST")
				continue
			}
			rest, _ = strconv.ParseInt(arg, 10, 64)
			reply("350 ok")
		case "RETR":
			f, err := os.Open(local(arg))
			if err != nil {
				reply("550 no such file")
				continue
			}
			reply("150 sending")
			dc, err := pasv.Accept()
			if err != nil {
				f.Close()
				return
			}
			f.Seek(rest, io.SeekStart)
			rest = 0
			var src io.Reader = f
			die := s.dieAt.Swap(0)
			if die > 0 {
				src = io.LimitReader(f, die)
			}
			io.Copy(dc, src)
			if die == 0 && s.oversend > 0 {
				dc.Write(make([]byte, s.oversend))
			}
			f.Close()
			dc.Close()
			if die > 0 {
				reply("426 connection closed; transfer aborted")
			} else {
				reply("226 done")
			}
		case "STOR":
			reply("150 receiving")
			dc, err := pasv.Accept()
			if err != nil {
				return
			}
			f, err := os.Create(local(arg))
			if err != nil {
				dc.Close()
				reply("553 cannot create")
				continue
			}
			io.Copy(f, dc)
			f.Close()
			dc.Close()
			reply("226 stored")
		case "RNFR":
			rnfr = arg
			reply("350 ready")
		case "RNTO":
			if err := os.Rename(local(rnfr), local(arg)); err != nil {
				reply("550 rename failed")
				continue
			}
			reply("250 renamed")
		case "DELE":
			os.Remove(local(arg))
			reply("250 deleted")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

func put(t *testing.T, s *ftpServer, name string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(s.root, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func provider(wd string) *ftpstage.Provider {
	return &ftpstage.Provider{WorkDir: wd, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

func same(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (%d vs %d bytes)", path, len(got), len(want))
	}
}

func empty(t *testing.T, dir string) {
	t.Helper()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left in %s: %d", dir, len(ents))
	}
}

func TestStageIn(t *testing.T) {
	for _, noEPSV := range []bool{false, true} {
		t.Run(fmt.Sprintf("pasv=%v", noEPSV), func(t *testing.T) {
			s := newFTPServer(t)
			s.noEPSV = noEPSV
			data := put(t, s, "pub/data.bin", 2<<20+3)
			wd := t.TempDir()
			if err := provider(wd).StageIn(context.Background(), s.url("pub/data.bin"), "d/data.bin"); err != nil {
				t.Fatal(err)
			}
			same(t, filepath.Join(wd, "d/data.bin"), data)
		})
	}
}

func TestResumeWithREST(t *testing.T) {
	s := newFTPServer(t)
	data := put(t, s, "f", 1<<20)
	s.dieAt.Store(300000)
	wd := t.TempDir()
	if err := provider(wd).StageIn(context.Background(), s.url("f"), "f"); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(wd, "f"), data)
	if !s.seen("REST 300000") {
		t.Fatal("second attempt did not resume with REST")
	}
}

func TestRestartWithoutREST(t *testing.T) {
	s := newFTPServer(t)
	s.noRest = true
	data := put(t, s, "f", 1<<20)
	s.dieAt.Store(300000)
	wd := t.TempDir()
	if err := provider(wd).StageIn(context.Background(), s.url("f"), "f"); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(wd, "f"), data)
}

func TestMissingNamesURL(t *testing.T) {
	s := newFTPServer(t)
	wd := t.TempDir()
	u := s.url("pub/nope.dat")
	err := provider(wd).StageIn(context.Background(), u, "x")
	var re *ftpstage.ReplyError
	if !errors.As(err, &re) || re.Code != 550 || !strings.Contains(err.Error(), u.String()) {
		t.Fatalf("got %v", err)
	}
	empty(t, wd)
	t.Log(err)
}

func TestLogin(t *testing.T) {
	s := newFTPServer(t)
	s.password = "s3cret"
	data := put(t, s, "f", 1000)
	wd := t.TempDir()
	err := provider(wd).StageIn(context.Background(), s.url("f"), "f")
	var re *ftpstage.ReplyError
	if !errors.As(err, &re) || re.Code != 530 {
		t.Fatalf("anonymous: got %v", err)
	}
	u := s.url("f")
	u.User = url.UserPassword("bob", "s3cret")
	if err := provider(wd).StageIn(context.Background(), u, "f"); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(wd, "f"), data)
	u.User = url.UserPassword("bob", "wrong")
	if err := provider(wd).StageIn(context.Background(), u, "g"); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad password: got %v (must not echo the password)", err)
	}
}

func TestOversendRefused(t *testing.T) {
	s := newFTPServer(t)
	s.oversend = 10
	put(t, s, "f", 5000)
	wd := t.TempDir()
	err := provider(wd).StageIn(context.Background(), s.url("f"), "f")
	if !errors.Is(err, ftpstage.ErrOversend) {
		t.Fatalf("got %v", err)
	}
	empty(t, wd)
}

func TestEscapeRefused(t *testing.T) {
	s := newFTPServer(t)
	put(t, s, "f", 10)
	err := provider(t.TempDir()).StageIn(context.Background(), s.url("f"), "../../x")
	if !errors.Is(err, staging.ErrEscapesWorkDir) {
		t.Fatalf("got %v", err)
	}
}

func TestStageOut(t *testing.T) {
	s := newFTPServer(t)
	os.MkdirAll(filepath.Join(s.root, "up"), 0o755)
	wd := t.TempDir()
	data := make([]byte, 700000)
	rand.Read(data)
	os.WriteFile(filepath.Join(wd, "res.bin"), data, 0o644)
	if err := provider(wd).StageOut(context.Background(), "res.bin", s.url("up/res.bin")); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(s.root, "up/res.bin"), data)
	if ents, _ := os.ReadDir(filepath.Join(s.root, "up")); len(ents) != 1 {
		t.Fatalf("temporary upload left behind: %v", ents)
	}
	if !s.seen("RNTO up/res.bin") {
		t.Fatal("upload was not renamed into place")
	}
}

func TestContextDeadline(t *testing.T) {
	// A server that accepts the data connection and then sends nothing.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		fmt.Fprintf(c, "220 hi\r\n")
		var pasv net.Listener
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.Fields(line)[0] {
			case "USER":
				fmt.Fprintf(c, "230 ok\r\n")
			case "EPSV":
				pasv, _ = net.Listen("tcp", "127.0.0.1:0")
				defer pasv.Close()
				fmt.Fprintf(c, "229 (|||%d|)\r\n", pasv.Addr().(*net.TCPAddr).Port)
			case "RETR":
				fmt.Fprintf(c, "150 sending\r\n")
				dc, _ := pasv.Accept()
				defer dc.Close()
			default:
				fmt.Fprintf(c, "200 ok\r\n")
			}
		}
	}()
	wd := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	u, _ := url.Parse("ftp://" + l.Addr().String() + "/f")
	start := time.Now()
	err = provider(wd).StageIn(ctx, u, "f")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
	empty(t, wd)
}
