package parsl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/threads"
	"github.com/parsl-go/parsl/staging"
)

var (
	// filesWrite writes text to out.
	filesWrite = RegisterBash2("test.files.write", func(ctx context.Context, text string, out File) (string, error) {
		return fmt.Sprintf("printf %%s %q > %q", text, out.Path()), nil
	})
	// filesUpper writes in, upper-cased, to out.
	filesUpper = RegisterBash2("test.files.upper", func(ctx context.Context, in, out File) (string, error) {
		return fmt.Sprintf("tr a-z A-Z < %q > %q", in.Path(), out.Path()), nil
	})
	// filesRead returns a file's contents.
	filesRead = Register1("test.files.read", func(ctx context.Context, f File) (string, error) {
		b, err := os.ReadFile(f.Path())
		return string(b), err
	})
	// filesWhere returns the path the app was given.
	filesWhere = Register1("test.files.where", func(ctx context.Context, f File) (string, error) { return f.URL, nil })
	// filesNothing creates nothing, whatever its outputs say.
	filesNothing = Register1("test.files.nothing", func(ctx context.Context, f File) (int, error) { return 0, nil })
)

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStageOutFileURL: an output declared as a file:// URL in another
// directory is written by the app to a local path under the run directory
// and copied to the URL by a parsl.stage_out task; the output's future
// completes after that, with the File naming the URL.
func TestStageOutFileURL(t *testing.T) {
	d, ctx := filesDFK(t, Config{})
	dest := t.TempDir()
	out := NewFile("file://" + filepath.Join(dest, "sub", "result.txt"))

	app := filesSubmit[int](d, filesWrite.app, srcs(Val("hello"), out), Outputs(out))
	outs := app.Outputs()
	if len(outs) != 1 {
		t.Fatalf("Outputs() = %d futures, want 1", len(outs))
	}
	f, err := outs[0].Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f != out {
		t.Fatalf("output future gave %v, want %v", f, out)
	}
	if got := mustRead(t, filepath.Join(dest, "sub", "result.txt")); got != "hello" {
		t.Fatalf("destination holds %q", got)
	}
	if outs[0].TaskID() <= app.TaskID() {
		t.Fatalf("output future is task %d, want the stage-out task after app task %d", outs[0].TaskID(), app.TaskID())
	}
	// The app wrote to a local path under the run directory, not to
	// the destination.
	runDir, _ := filepath.Abs(d.RunDir())
	local := app.task.Options().Outputs[0]
	if !strings.HasPrefix(local, filepath.Join(runDir, "staging", "out")) {
		t.Fatalf("app wrote %s, want a path under %s/staging/out", local, runDir)
	}
	if got := mustRead(t, local); got != "hello" {
		t.Fatalf("local copy holds %q", got)
	}
	// The same futures come back on a second call.
	if again := app.Outputs(); again[0] != outs[0] {
		t.Fatal("Outputs() returned a different future for a staged output")
	}
}

// TestStageOutMissing: an app that does not create a staged output fails
// with *MissingOutputsError naming the file, and the output's future
// fails with a DependencyError whose cause is that error.
func TestStageOutMissing(t *testing.T) {
	d, ctx := filesDFK(t, Config{})
	out := NewFile("file://" + filepath.Join(t.TempDir(), "never.txt"))
	app := filesSubmit[int](d, filesNothing.app, srcs(out), Outputs(out))
	_, err := app.Get(ctx)
	var mo *MissingOutputsError
	if !errors.As(err, &mo) || !strings.Contains(err.Error(), "never.txt") {
		t.Fatalf("app: got %v, want a MissingOutputsError naming never.txt", err)
	}
	_, err = app.Outputs()[0].Get(ctx)
	var dep *DependencyError
	if !errors.As(err, &dep) || !errors.As(err, &mo) {
		t.Fatalf("output future: got %v, want a DependencyError caused by MissingOutputsError", err)
	}
	if ids := dep.TaskIDs(); len(ids) != 1 || ids[0] != app.TaskID() {
		t.Fatalf("DependencyError names %v, want [%d]", ids, app.TaskID())
	}
}

// TestStageOutRefused: outputs that cannot be uploaded fail the submit
// with an error saying why and what is supported.
func TestStageOutRefused(t *testing.T) {
	d, ctx := filesDFK(t, Config{})
	for _, c := range []struct{ url, want string }{
		{"https://example.org/out.txt", "can only be downloaded; stage outputs out to one of: file, ftp, rsync, ssh"},
		{"gopher://example.org/out.txt", `unknown URL scheme "gopher"`},
		{"rsync://host/module/", "names a directory, not a file"},
	} {
		out := NewFile(c.url)
		_, err := filesSubmit[int](d, filesNothing.app, srcs(out), Outputs(out)).Get(ctx)
		var ae *AppError
		if !errors.As(err, &ae) || ae.Kind != "staging" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a staging error containing %q", c.url, err, c.want)
		}
	}
}

// startRsyncd runs a real rsync daemon on a loopback port serving dir as
// module "data", and returns the module's base URL.
func startRsyncd(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not on PATH; install it (apt-get install -y rsync) to run this test")
	}
	cfgDir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(cfgDir, "rsyncd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "use chroot = no\nuid = %d\ngid = %d\n[data]\npath = %s\nread only = no\n",
		os.Getuid(), os.Getgid(), dir), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rsync", "--daemon", "--no-detach", "--address=127.0.0.1", fmt.Sprintf("--port=%d", port),
		"--config="+conf, "--log-file="+filepath.Join(cfgDir, "log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rsync daemon did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("rsync://%s/data/", addr)
}

// TestStageOutRsyncChain: DataFutures chain across three apps through a
// real rsync daemon. The first app's output is staged out to rsync://, the
// second app's input is that DataFuture (staged in again from the daemon)
// and its output another rsync:// URL, and the third app reads that.
func TestStageOutRsyncChain(t *testing.T) {
	module := t.TempDir()
	base := startRsyncd(t, module)
	d, ctx := filesDFK(t, Config{})

	a := NewFile(base + "step1/a.txt")
	b := NewFile(base + "step2/b.txt")
	first := filesSubmit[int](d, filesWrite.app, srcs(Val("chain"), a), Outputs(a))
	second := filesSubmit[int](d, filesUpper.app, srcs(first.Outputs()[0], b), Outputs(b))
	third := filesSubmit[string](d, filesRead.app, srcs(second.Outputs()[0]))
	got, err := third.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != "CHAIN" {
		t.Fatalf("third app read %q, want CHAIN", got)
	}
	if s := mustRead(t, filepath.Join(module, "step1", "a.txt")); s != "chain" {
		t.Fatalf("module step1/a.txt = %q", s)
	}
	if s := mustRead(t, filepath.Join(module, "step2", "b.txt")); s != "CHAIN" {
		t.Fatalf("module step2/b.txt = %q", s)
	}
	if f, err := second.Outputs()[0].Get(ctx); err != nil || f != b {
		t.Fatalf("second output future: %v, %v; want %v", f, err, b)
	}
}

// TestWorkDirOption: relative paths of arguments and outputs resolve
// against WorkDir, remote inputs are staged under it, and a path climbing
// out of it fails the submit.
func TestWorkDirOption(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("remote")) }))
	defer srv.Close()
	d, ctx := filesDFK(t, Config{})
	wd := filepath.Join(t.TempDir(), "work") // created at submit
	in := NewFile("in.txt")
	out := NewFile("sub/out.txt")

	// Relative input: created first, by a task in the same working dir.
	mk := filesSubmit[int](d, filesWrite.app, srcs(Val("abc"), in), Outputs(in), WorkDir(wd))
	up := filesSubmit[int](d, filesUpper.app, srcs(mk.Outputs()[0], out), Outputs(out), WorkDir(wd))
	f, err := up.Outputs()[0].Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path() != filepath.Join(wd, "sub", "out.txt") {
		t.Fatalf("output future names %s, want it under %s", f.Path(), wd)
	}
	if s := mustRead(t, filepath.Join(wd, "sub", "out.txt")); s != "ABC" {
		t.Fatalf("out.txt = %q", s)
	}

	where, err := filesSubmit[string](d, filesWhere.app, srcs(NewFile(srv.URL+"/x/data.bin")), WorkDir(wd)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(where, filepath.Join(wd, "staging", "in")+"/") || filepath.Base(where) != "data.bin" {
		t.Fatalf("staged input at %s, want it under %s/staging/in", where, wd)
	}

	for _, c := range []struct {
		name string
		args []File
		opts []CallOption
	}{
		{"argument", []File{NewFile("../escape.txt")}, nil},
		{"output", []File{NewFile("ok.txt")}, []CallOption{Outputs(NewFile("a/../../escape.txt"))}},
		{"staged name", []File{NewFile(srv.URL + "/x/..")}, nil},
	} {
		_, err := filesSubmit[int](d, filesNothing.app, srcs(c.args[0]), append(c.opts, WorkDir(wd))...).Get(ctx)
		if !errors.Is(err, staging.ErrEscapesWorkDir) {
			t.Errorf("%s: got %v, want ErrEscapesWorkDir", c.name, err)
		}
	}
}

// dirExec is a threads executor with a working directory and a storage
// access list, as executors that implement WorkingDirExecutor and
// StorageAccessExecutor have.
type dirExec struct {
	*threads.Executor
	dir    string
	access []staging.Provider
}

func (e dirExec) WorkingDir() string                { return e.dir }
func (e dirExec) StorageAccess() []staging.Provider { return e.access }

// TestExecutorFiles: an executor's working directory applies to its tasks
// (WorkDir overrides it), its storage access limits the URLs they may use,
// and a task that could go to executors that differ must name one.
func TestExecutorFiles(t *testing.T) {
	wdA, wdB, other := t.TempDir(), t.TempDir(), t.TempDir()
	onlyFiles := dirExec{threads.New(threads.Options{Label: "a"}), wdA, []staging.Provider{staging.SharedFS{}}}
	plain := dirExec{threads.New(threads.Options{Label: "b"}), wdB, nil}
	d, ctx := filesDFK(t, Config{Executors: []executor.Executor{onlyFiles, plain}})

	for _, c := range []struct {
		opts []CallOption
		want string
	}{
		{[]CallOption{Executor("a")}, filepath.Join(wdA, "rel.txt")},
		{[]CallOption{Executor("b")}, filepath.Join(wdB, "rel.txt")},
		{[]CallOption{Executor("a"), WorkDir(other)}, filepath.Join(other, "rel.txt")},
	} {
		got, err := filesSubmit[string](d, filesWhere.app, srcs(NewFile("rel.txt")), c.opts...).Get(ctx)
		if err != nil || got != c.want {
			t.Errorf("got %q, %v; want %q", got, err, c.want)
		}
	}

	_, err := filesSubmit[string](d, filesWhere.app, srcs(NewFile("https://example.org/x")), Executor("a")).Get(ctx)
	var use *staging.UnknownSchemeError
	if !errors.As(err, &use) || !strings.Contains(err.Error(), "supported: file") {
		t.Errorf("https on a file-only executor: got %v, want an UnknownSchemeError listing file", err)
	}

	_, err = filesSubmit[string](d, filesWhere.app, srcs(NewFile("rel.txt"))).Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "parsl.Executor(label)") {
		t.Errorf("unnamed executor: got %v, want an error asking to name one", err)
	}
	// With its own working directory, a task's local paths no longer
	// depend on the executor; its URLs still do (storage access).
	if got, err := filesSubmit[string](d, filesWhere.app, srcs(NewFile("rel.txt")), WorkDir(other)).Get(ctx); err != nil || got != filepath.Join(other, "rel.txt") {
		t.Errorf("own WorkDir, unnamed executor: got %q, %v", got, err)
	}
	_, err = filesSubmit[string](d, filesWhere.app, srcs(NewFile("https://example.org/x")), WorkDir(other)).Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "parsl.Executor(label)") {
		t.Errorf("URL, own WorkDir, unnamed executor: got %v, want an error asking to name one", err)
	}
	// Without files, the executor need not be named.
	if _, err := filesSubmit[string](d, filesWhere.app, srcs(File{})).Get(ctx); err != nil {
		t.Errorf("empty File: %v", err)
	}
}
