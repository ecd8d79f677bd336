package bash

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const banner = "--> executable follows <--\n%s\n--> end executable <--\n"

func bannerFor(cmd string) string {
	return strings.Replace(banner, "%s", cmd, 1)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "notexec.sh")
	if err := os.WriteFile(script, []byte("#!/bin/bash\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(script, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command string
		want    int
	}{
		{"success", "true", 0},
		{"division by zero", "echo $((5/0))", 1},
		{"explicit exit", "exit 15", 15},
		{"command not found", "parsl_no_such_command_xyz", 127},
		{"not executable", script, 126},
		{"killed by signal", "kill -TERM $$", 128 + int(syscall.SIGTERM)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Run(context.Background(), Spec{Command: tt.command})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != tt.want || res.TimedOut || res.Canceled {
				t.Fatalf("Run(%q) = %+v, want ExitCode %d", tt.command, res, tt.want)
			}
		})
	}
}

func TestStreamsToFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "dir", "out.txt")
	errf := filepath.Join(dir, "other", "err.txt")
	cmd := "echo hello; echo oops >&2"
	s := Spec{Command: cmd, Stdout: out, Stderr: errf}

	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, out); got != "hello\n" {
		t.Errorf("stdout = %q", got)
	}
	wantErr := bannerFor(cmd) + "oops\n"
	if got := readFile(t, errf); got != wantErr {
		t.Errorf("stderr = %q, want %q", got, wantErr)
	}
	for _, p := range []string{filepath.Dir(out), filepath.Dir(errf)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() {
			t.Errorf("%s is not a directory", p)
		}
	}

	// Append is the default: a second run keeps the first one's output.
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, out); got != "hello\nhello\n" {
		t.Errorf("stdout after append = %q", got)
	}
	if got := readFile(t, errf); got != wantErr+wantErr {
		t.Errorf("stderr after append = %q", got)
	}

	// Truncate starts over.
	s.Truncate = true
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, out); got != "hello\n" {
		t.Errorf("stdout after truncate = %q", got)
	}
	if got := readFile(t, errf); got != wantErr {
		t.Errorf("stderr after truncate = %q", got)
	}
}

func TestStdoutEqualsStderr(t *testing.T) {
	t.Parallel()
	for _, truncate := range []bool{false, true} {
		t.Run("truncate="+strconv.FormatBool(truncate), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "both.txt")
			if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := "echo one; echo two >&2; echo three"
			// A differently spelled but equal path must still share the handle.
			other := filepath.Join(filepath.Dir(path), ".", "both.txt")
			res, err := Run(context.Background(), Spec{Command: cmd, Stdout: path, Stderr: other, Truncate: truncate})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			want := bannerFor(cmd) + "one\ntwo\nthree\n"
			if !truncate {
				want = "old\n" + want
			}
			if got := readFile(t, path); got != want {
				t.Errorf("file = %q, want %q", got, want)
			}
		})
	}
}

func TestBadStreamFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A regular file where a directory is needed defeats even root.
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(blocker, "sub", "out.txt")
	good := filepath.Join(dir, "good.txt")
	tests := []struct {
		name   string
		spec   Spec
		stream string
	}{
		{"stdout", Spec{Stdout: bad}, "stdout"},
		{"stderr", Spec{Stdout: good, Stderr: bad}, "stderr"},
		{"file in place of file's dir", Spec{Stderr: filepath.Join(blocker, "err.txt")}, "stderr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(dir, "ran-"+tt.stream)
			tt.spec.Command = "touch " + marker
			_, err := Run(context.Background(), tt.spec)
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *StreamError", err, err)
			}
			wantPath := tt.spec.Stdout
			if tt.stream == "stderr" {
				wantPath = tt.spec.Stderr
			}
			if se.Stream != tt.stream || se.Path != wantPath || se.Err == nil {
				t.Errorf("StreamError = %+v", se)
			}
			if !strings.Contains(err.Error(), wantPath) {
				t.Errorf("message %q does not name %s", err, wantPath)
			}
			if !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("errors.Is(err, ENOTDIR) = false for %v", err)
			}
			if _, statErr := os.Stat(marker); statErr == nil {
				t.Error("command ran despite the bad stream file")
			}
		})
	}
}

// processDead reports whether pid is gone or a zombie: after the kill the
// grandchild is reparented, and its new parent may reap it late or never.
func processDead(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// Without /proc (macOS) kill 0 is all there is to go by.
		_, noProc := os.Stat("/proc/self")
		return noProc == nil && errors.Is(err, os.ErrNotExist)
	}
	// The state follows the parenthesised command name, which may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !processDead(pid) {
		if time.Now().After(deadline) {
			// Don't leave it, or anything it started, behind.
			if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 {
				syscall.Kill(-pgid, syscall.SIGKILL)
			}
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("background child %d still alive after the group was killed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, path)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	return pid
}

// TestKill covers both ways a command is stopped early. The background sleep
// is the case Python Parsl gets wrong: killing only the shell leaves it.
func TestKill(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		command string
		pidfile bool
	}{
		{"foreground", "sleep 5", false},
		{"background child", "sleep 30 & echo $! > %PID%; wait", true},
		// Holding the inherited stdout open must not block Run either.
		{"detached child holding stdout", "(sleep 30; echo late) & echo $! > %PID%; sleep 30", true},
	}
	for _, how := range []string{"walltime", "cancel"} {
		for _, tt := range tests {
			t.Run(how+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				pidfile := filepath.Join(dir, "pid")
				cmd := strings.ReplaceAll(tt.command, "%PID%", pidfile)
				s := Spec{Command: cmd, Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err")}
				ctx := context.Background()
				if how == "walltime" {
					s.Walltime = 100 * time.Millisecond
				} else {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
					time.AfterFunc(100*time.Millisecond, cancel)
				}
				start := time.Now()
				res, err := Run(ctx, s)
				elapsed := time.Since(start)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if elapsed > 700*time.Millisecond {
					t.Errorf("Run took %v after a 100ms limit", elapsed)
				}
				want := Result{ExitCode: 128 + int(syscall.SIGKILL), TimedOut: how == "walltime", Canceled: how == "cancel"}
				if res != want {
					t.Errorf("Result = %+v, want %+v", res, want)
				}
				if tt.pidfile {
					if _, err := os.Stat(pidfile); err != nil {
						// On a loaded machine the kill can come before the
						// shell got as far as forking: nothing to check.
						t.Logf("the command was killed before it wrote its pid file: %v", err)
						return
					}
					waitDead(t, readPid(t, pidfile))
				}
			})
		}
	}
}

func TestWalltimeNotReached(t *testing.T) {
	t.Parallel()
	res, err := Run(context.Background(), Spec{Command: "exit 3", Walltime: 5 * time.Second})
	if err != nil || res != (Result{ExitCode: 3}) {
		t.Fatalf("Run = %+v, %v", res, err)
	}
}

func TestContextAlreadyDone(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "ran")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Run(ctx, Spec{Command: "touch " + marker})
	if !errors.Is(err, context.Canceled) || !res.Canceled {
		t.Fatalf("Run = %+v, %v; want Canceled and context.Canceled", res, err)
	}
	if _, statErr := os.Stat(marker); statErr == nil {
		t.Error("command ran with a done context")
	}
}

func TestEnvAndDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	_, err := Run(context.Background(), Spec{
		Command: `echo "$PARSL_BASH_A|$PARSL_BASH_B|$HOME"; pwd -P; echo marker > rel.txt`,
		Dir:     work,
		// HOME is inherited, so this also checks that Env wins over it.
		Env:    []string{"PARSL_BASH_A=alpha", "PARSL_BASH_B=has spaces=and equals", "HOME=/parsl/home"},
		Stdout: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	realWork, err := filepath.EvalSymlinks(work)
	if err != nil {
		t.Fatal(err)
	}
	want := "alpha|has spaces=and equals|/parsl/home\n" + realWork + "\n"
	if got := readFile(t, out); got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got := readFile(t, filepath.Join(work, "rel.txt")); got != "marker\n" {
		t.Errorf("rel.txt = %q", got)
	}
}

func TestBadDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "missing"), file} {
		_, err := Run(context.Background(), Spec{Command: "true", Dir: d})
		if err == nil || !strings.Contains(err.Error(), d) {
			t.Errorf("Dir %q: err = %v, want one naming the dir", d, err)
		}
	}
}

// TestBashMissing is not parallel because it changes bashPath; Go runs
// parallel top-level tests only after the sequential ones have finished.
func TestBashMissing(t *testing.T) {
	old := bashPath
	bashPath = filepath.Join(t.TempDir(), "no-bash")
	defer func() { bashPath = old }()
	_, err := Run(context.Background(), Spec{Command: "true"})
	if err == nil || !strings.Contains(err.Error(), bashPath) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want one naming %s", err, bashPath)
	}
}

func TestLargeOutput(t *testing.T) {
	t.Parallel()
	const size = 10 << 20
	out := filepath.Join(t.TempDir(), "big")
	cmd := "head -c " + strconv.Itoa(size) + " /dev/zero | tr '\\0' x"
	for _, path := range []string{out, ""} {
		res, err := Run(context.Background(), Spec{Command: cmd, Stdout: path, Walltime: 30 * time.Second})
		if err != nil || res != (Result{}) {
			t.Fatalf("Stdout %q: Run = %+v, %v", path, res, err)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != size || bytes.Count(b, []byte("x")) != size {
		t.Errorf("got %d bytes, want %d x's", len(b), size)
	}
}

// TestTinyWalltime: the deadline may pass before or after the start; either
// way the command must be reported as timed out, never as a normal exit.
func TestTinyWalltime(t *testing.T) {
	t.Parallel()
	res, err := Run(context.Background(), Spec{Command: "sleep 5", Walltime: time.Nanosecond})
	if !res.TimedOut || res.Canceled {
		t.Fatalf("Run = %+v, %v; want TimedOut", res, err)
	}
	if err != nil && !errors.Is(err, errWalltime) {
		t.Fatalf("err = %v, want nil or errWalltime", err)
	}
}
