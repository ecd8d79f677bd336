package rsync_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/rsync"
)

func needRsync(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not on PATH; install it (apt-get install -y rsync) to run the rsync staging tests")
	}
}

func randFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func same(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs", path)
	}
}

func TestLocal(t *testing.T) {
	needRsync(t)
	ctx := context.Background()
	remote, wd := t.TempDir(), t.TempDir()
	data := randFile(t, filepath.Join(remote, "a b.bin"), 300000)
	p := &rsync.Provider{WorkDir: wd}
	if err := p.StageIn(ctx, &url.URL{Scheme: "file", Path: filepath.Join(remote, "a b.bin")}, "in/a b.bin"); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(wd, "in/a b.bin"), data)
	out := filepath.Join(remote, "out/deeper/r.bin")
	if err := p.StageOut(ctx, "in/a b.bin", &url.URL{Scheme: "file", Path: out}); err != nil {
		t.Fatal(err)
	}
	same(t, out, data)
	if err := p.StageIn(ctx, &url.URL{Scheme: "file", Path: out}, "../escape"); !errors.Is(err, staging.ErrEscapesWorkDir) {
		t.Fatalf("escape: %v", err)
	}
}

func TestMissingSourceNamesURL(t *testing.T) {
	needRsync(t)
	wd := t.TempDir()
	u := &url.URL{Scheme: "file", Path: filepath.Join(wd, "nope")}
	err := (&rsync.Provider{WorkDir: wd}).StageIn(context.Background(), u, "x")
	var re *rsync.Error
	if !errors.As(err, &re) || re.ExitCode != 23 || !strings.Contains(err.Error(), u.String()) {
		t.Fatalf("got %v", err)
	}
	if names, _ := os.ReadDir(wd); len(names) != 0 {
		t.Fatalf("files left: %v", names)
	}
	t.Log(err)
}

// TestDaemon runs a real rsync daemon on a loopback port and stages to
// and from an rsync:// module.
func TestDaemon(t *testing.T) {
	needRsync(t)
	ctx := context.Background()
	mod, cfgDir, wd := t.TempDir(), t.TempDir(), t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(cfgDir, "rsyncd.conf")
	os.WriteFile(conf, fmt.Appendf(nil, "use chroot = no\nuid = %d\ngid = %d\n[data]\npath = %s\nread only = no\n", os.Getuid(), os.Getgid(), mod), 0o644)
	cmd := exec.Command("rsync", "--daemon", "--no-detach", "--address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--config="+conf, "--log-file="+filepath.Join(cfgDir, "log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rsync daemon did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	data := randFile(t, filepath.Join(mod, "x/in.bin"), 1<<20)
	p := &rsync.Provider{WorkDir: wd}
	base := fmt.Sprintf("rsync://127.0.0.1:%d/data/", port)
	src, _ := url.Parse(base + "x/in.bin")
	if err := p.StageIn(ctx, src, "in.bin"); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(wd, "in.bin"), data)
	dst, _ := url.Parse(base + "results/out.bin")
	if err := p.StageOut(ctx, "in.bin", dst); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(mod, "results/out.bin"), data)
	bad, _ := url.Parse(base + "missing")
	if err := p.StageIn(ctx, bad, "m"); err == nil || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("missing: %v", err)
	}
}

// TestSSHForm exercises the "user@host:path" path with a stand-in remote
// shell that runs the remote rsync locally, since no sshd is assumed.
func TestSSHForm(t *testing.T) {
	needRsync(t)
	ctx := context.Background()
	remote, wd, bin := t.TempDir(), t.TempDir(), t.TempDir()
	fakeSSH := filepath.Join(bin, "fake-ssh")
	// rsync calls: RSH [-p port] [-l user] host rsync --server ...
	script := "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -p|-l) shift 2;; *) break;; esac; done\nshift\nexec \"$@\"\n"
	os.WriteFile(fakeSSH, []byte(script), 0o755)
	data := randFile(t, filepath.Join(remote, "in.dat"), 200000)
	src, err := staging.ParseURL("alice@somehost:" + filepath.Join(remote, "in.dat"))
	if err != nil {
		t.Fatal(err)
	}
	p := &rsync.Provider{WorkDir: wd, RSH: fakeSSH}
	if err := p.StageIn(ctx, src, "in.dat"); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(wd, "in.dat"), data)
	dst, _ := url.Parse("ssh://alice@somehost:2222" + filepath.Join(remote, "out/o.dat"))
	if err := p.StageOut(ctx, "in.dat", dst); err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(remote, "out/o.dat"), data)
}

// TestInterruptedLeavesNoFile cancels a transfer slowed down with
// --bwlimit and checks that nothing remains under the destination name or
// as a temporary: rsync deletes its ".name.XXXXXX" temp on SIGTERM.
func TestInterruptedLeavesNoFile(t *testing.T) {
	needRsync(t)
	remote, wd := t.TempDir(), t.TempDir()
	randFile(t, filepath.Join(remote, "big"), 8<<20)
	// A remote-shell transfer so the data goes through a pipe that
	// --bwlimit can throttle.
	bin := t.TempDir()
	fakeSSH := filepath.Join(bin, "fake-ssh")
	os.WriteFile(fakeSSH, []byte("#!/bin/sh\nshift\nexec \"$@\"\n"), 0o755)
	p := &rsync.Provider{WorkDir: wd, RSH: fakeSSH, ExtraArgs: []string{"--bwlimit=512"}}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	src, _ := url.Parse("ssh://h" + filepath.Join(remote, "big"))
	err := p.StageIn(ctx, src, "big")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if names, _ := os.ReadDir(wd); len(names) != 0 {
		var ns []string
		for _, n := range names {
			ns = append(ns, n.Name())
		}
		t.Fatalf("left behind after cancellation: %v", ns)
	}
}

func TestNotInstalled(t *testing.T) {
	p := &rsync.Provider{Program: "no-such-rsync-binary"}
	err := p.StageIn(context.Background(), &url.URL{Scheme: "file", Path: "/x"}, filepath.Join(t.TempDir(), "x"))
	if !errors.Is(err, rsync.ErrNotInstalled) {
		t.Fatalf("got %v", err)
	}
}
