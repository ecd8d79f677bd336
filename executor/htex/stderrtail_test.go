package htex_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

// Issue 18, item 3: a failing bash app's error shows the end of its
// standard error, with or without a Stderr file, and the same on threads
// and htex.

var tailRun = parsl.RegisterBash1("htextest.tail.run", func(_ context.Context, cmd string) (string, error) {
	return cmd, nil
})

// tailFail runs cmd on the executor label and returns its BashExitError.
func tailFail(t *testing.T, dfk *parsl.DFK, label, cmd string, opts ...parsl.CallOption) *parsl.BashExitError {
	t.Helper()
	f := tailRun.Submit(dfk, parsl.Val(cmd), append(opts, parsl.Executor(label))...)
	_, err := f.Get(ctxT(t, 60*time.Second))
	var be *parsl.BashExitError
	if !errors.As(err, &be) {
		t.Fatalf("%s: err = %v (%T), want a *parsl.BashExitError", label, err, err)
	}
	if be.TaskID != f.TaskID() || be.App != "htextest.tail.run" || be.ExitCode != 2 {
		t.Errorf("%s: BashExitError = %+v", label, be)
	}
	return be
}

func TestBashStderrTailInError(t *testing.T) {
	dfk, _ := serLoad(t, 0)
	for _, label := range []string{"threads", "htex"} {
		t.Run(label, func(t *testing.T) {
			be := tailFail(t, dfk, label, "echo fine; echo oops >&2; exit 2")
			if be.StderrTail != "oops\n" {
				t.Errorf("StderrTail = %q, want %q", be.StderrTail, "oops\n")
			}
			if want := "failed with exit code 2: oops"; !strings.Contains(be.Error(), want) {
				t.Errorf("message %q lacks %q", be.Error(), want)
			}

			errf := filepath.Join(t.TempDir(), "err.txt")
			be = tailFail(t, dfk, label, "echo one >&2; echo two >&2; echo three >&2; echo four >&2; exit 2", parsl.Stderr(errf))
			if be.Stderr != errf || be.StderrTail != "one\ntwo\nthree\nfour\n" {
				t.Errorf("Stderr = %q, StderrTail = %q; want %q and the four lines without the banner", be.Stderr, be.StderrTail, errf)
			}
			want := "failed with exit code 2; see " + errf + "; stderr ends with:\n    two\n    three\n    four"
			if !strings.HasSuffix(be.Error(), want) {
				t.Errorf("message %q does not end with %q", be.Error(), want)
			}
		})
	}
}

func TestBashStderrTailBounded(t *testing.T) {
	dfk, _ := serLoad(t, 0)
	// 1 MiB of numbered 16-byte lines, then the last words.
	const cmd = `for ((i=0; i<65536; i++)); do printf 'line %09d\n' $i; done >&2; echo last words >&2; exit 2`
	for _, label := range []string{"threads", "htex"} {
		for _, file := range []bool{false, true} {
			var opts []parsl.CallOption
			if file {
				opts = append(opts, parsl.Stderr(filepath.Join(t.TempDir(), "err.txt")))
			}
			be := tailFail(t, dfk, label, cmd, opts...)
			tail := be.StderrTail
			if len(tail) > 4096 || len(tail) < 3000 {
				t.Errorf("%s (file %v): len(StderrTail) = %d, want at most 4096 and most of it", label, file, len(tail))
			}
			if !strings.HasPrefix(tail, "line ") || !strings.HasSuffix(tail, "line 000065535\nlast words\n") {
				t.Errorf("%s (file %v): StderrTail does not start at a line start or misses the end: %q...%q",
					label, file, tail[:min(len(tail), 20)], tail[max(0, len(tail)-40):])
			}
			if msg := be.Error(); len(msg) > 700 || !strings.HasSuffix(msg, "last words") {
				t.Errorf("%s (file %v): message too long (%d) or without the last line: %q", label, file, len(msg), msg)
			}
		}
	}
}

func TestBashAutoLog(t *testing.T) {
	dfk, _ := serLoad(t, 1)
	for _, label := range []string{"threads", "htex"} {
		t.Run(label, func(t *testing.T) {
			// The first try fails, the retry succeeds: each writes its own files.
			mark := filepath.Join(t.TempDir(), "mark")
			cmd := `if [ -e ` + mark + ` ]; then echo out2; echo err2 >&2; else touch ` + mark + `; echo out1; echo err1 >&2; exit 2; fi`
			f := tailRun.Submit(dfk, parsl.Val(cmd), parsl.Executor(label), parsl.AutoLog())
			if _, err := f.Get(ctxT(t, 60*time.Second)); err != nil {
				t.Fatalf("task: %v", err)
			}
			dir := filepath.Join(dfk.RunDir(), "task_logs", "htextest.tail.run")
			for try, want := range []string{"1", "2"} {
				base := filepath.Join(dir, fmt.Sprintf("%d_%d", f.TaskID(), try))
				if got := readFile(t, base+".stdout"); got != "out"+want+"\n" {
					t.Errorf("try %d stdout = %q, want %q", try, got, "out"+want+"\n")
				}
				if got := readFile(t, base+".stderr"); !strings.HasSuffix(got, "--> end executable <--\nerr"+want+"\n") {
					t.Errorf("try %d stderr = %q, want the banner then %q", try, got, "err"+want+"\n")
				}
			}

			// The failure names its own file.
			be := tailFail(t, dfk, label, "echo oops >&2; exit 2", parsl.AutoLog())
			want := filepath.Join(dir, fmt.Sprintf("%d_1.stderr", be.TaskID))
			if be.Stderr != want || !strings.HasSuffix(be.Error(), ": oops; see "+want) {
				t.Errorf("Stderr = %q, message %q; want the last try's file %q", be.Stderr, be.Error(), want)
			}
		})
	}
}

func TestBashAutoLogConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: t.TempDir(), BashAutoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = dfk.Close(ctx)
	})
	// Stdout given explicitly wins; stderr goes to the AutoLog file.
	out := filepath.Join(t.TempDir(), "out.txt")
	f := tailRun.Submit(dfk, parsl.Val("echo to-out; echo to-err >&2"), parsl.Stdout(out))
	if _, err := f.Get(ctxT(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dfk.RunDir(), "task_logs", "htextest.tail.run", fmt.Sprintf("%d_0", f.TaskID()))
	if got := readFile(t, out); got != "to-out\n" {
		t.Errorf("stdout file = %q", got)
	}
	if _, err := os.Stat(base + ".stdout"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AutoLog stdout file made although Stdout was given: %v", err)
	}
	if got := readFile(t, base+".stderr"); !strings.HasSuffix(got, "to-err\n") {
		t.Errorf("AutoLog stderr = %q", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
	}
	return string(b)
}
