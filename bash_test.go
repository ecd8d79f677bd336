package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

// Bash apps, after Parsl's test_bash_apps (parsl-features.md §1.4, §11.2).

// bashQuote single-quotes s for bash.
func bashQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// bashBuilds counts calls of bashWriteValue's command builder.
var bashBuilds atomic.Int64

var (
	bashEcho = parsl.RegisterBash1("test.bash.echo", func(_ context.Context, msg string) (string, error) {
		return "echo " + bashQuote(msg), nil
	})
	bashEchoBoth = parsl.RegisterBash1("test.bash.echoboth", func(_ context.Context, msg string) (string, error) {
		return fmt.Sprintf("echo out:%s; echo err:%s >&2", bashQuote(msg), bashQuote(msg)), nil
	})
	bashRun = parsl.RegisterBash1("test.bash.run", func(_ context.Context, cmd string) (string, error) {
		return cmd, nil
	})
	bashSleep = parsl.RegisterBash1("test.bash.sleep", func(_ context.Context, secs int) (string, error) {
		return fmt.Sprintf("sleep %d", secs), nil
	})
	// bashWriteValue writes a value computed upstream into a file.
	bashWriteValue = parsl.RegisterBash2("test.bash.writevalue", func(_ context.Context, value int, path string) (string, error) {
		bashBuilds.Add(1)
		return fmt.Sprintf("echo %d > %s", value, bashQuote(path)), nil
	})
	bashEmpty    = parsl.RegisterBash0("test.bash.empty", func(context.Context) (string, error) { return "", nil })
	bashBadBuild = parsl.RegisterBash1("test.bash.badbuild", func(_ context.Context, x int) (string, error) {
		if x < 0 {
			panic("negative")
		}
		return "", fmt.Errorf("cannot build a command for %d", x)
	})
	// bashReadInt is a Go app reading a number from a file that a bash app
	// wrote; exit is the bash app's result, a dependency only.
	bashReadInt = parsl.Register2("test.bash.readint", func(_ context.Context, exit int, path string) (int, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	})
)

func TestBashSimple(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	out := filepath.Join(t.TempDir(), "out.txt")
	f := bashEcho.Submit(dfk, parsl.Val("hello bash"), parsl.Stdout(out))
	if got := coreGet(t, f); got != 0 {
		t.Errorf("bash app result = %d, want 0", got)
	}
	if got := coreReadFile(t, out); got != "hello bash\n" {
		t.Errorf("stdout file = %q", got)
	}
	if f.State() != parsl.StateExecDone {
		t.Errorf("state %v", f.State())
	}
}

func TestBashCommandBuiltAfterInputs(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	dir := t.TempDir()
	path := filepath.Join(dir, "value.txt")
	p := parsl.NewPromise[int]()
	before := bashBuilds.Load()
	f := bashWriteValue.Submit(dfk, coreDouble.Submit(dfk, p.Future()), parsl.Val(path))
	time.Sleep(20 * time.Millisecond)
	if n := bashBuilds.Load() - before; n != 0 || f.IsDone() {
		t.Fatalf("command built %d times (done=%v) before its input resolved", n, f.IsDone())
	}
	p.Resolve(21)
	coreGet(t, f)
	if got := strings.TrimSpace(coreReadFile(t, path)); got != "42" {
		t.Errorf("file = %q, want 42 (the upstream future's value)", got)
	}
}

func TestBashStdStreams(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})

	t.Run("append by default", func(t *testing.T) {
		dir := t.TempDir()
		out, errf := filepath.Join(dir, "o.txt"), filepath.Join(dir, "sub", "e.txt")
		for _, msg := range []string{"one", "two"} {
			coreGet(t, bashEchoBoth.Submit(dfk, parsl.Val(msg), parsl.Stdout(out), parsl.Stderr(errf)))
		}
		if got := coreReadFile(t, out); got != "out:one\nout:two\n" {
			t.Errorf("stdout = %q, want both runs appended", got)
		}
		e := coreReadFile(t, errf)
		coreContains(t, "stderr", e, "err:one\n", "err:two\n", "--> executable follows <--", "echo out:")
	})

	t.Run("truncate", func(t *testing.T) {
		dir := t.TempDir()
		out, errf := filepath.Join(dir, "o.txt"), filepath.Join(dir, "e.txt")
		for _, msg := range []string{"one", "two"} {
			coreGet(t, bashEchoBoth.Submit(dfk, parsl.Val(msg), parsl.Stdout(out), parsl.Stderr(errf), parsl.TruncateStd()))
		}
		if got := coreReadFile(t, out); got != "out:two\n" {
			t.Errorf("stdout = %q, want only the last run", got)
		}
		e := coreReadFile(t, errf)
		if strings.Contains(e, "err:one") || !strings.Contains(e, "err:two") {
			t.Errorf("stderr = %q, want only the last run", e)
		}
	})

	t.Run("File and same file for both", func(t *testing.T) {
		dir := t.TempDir()
		both := parsl.NewFile(filepath.Join(dir, "both.txt"))
		coreGet(t, bashEchoBoth.Submit(dfk, parsl.Val("x"), parsl.Stdout(both), parsl.Stderr(both)))
		coreContains(t, "combined", coreReadFile(t, both.Path()), "out:x\n", "err:x\n")
	})

	t.Run("file URL", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "u.txt")
		coreGet(t, bashEcho.Submit(dfk, parsl.Val("url"), parsl.Stdout(parsl.NewFile("file://"+path))))
		if got := coreReadFile(t, path); got != "url\n" {
			t.Errorf("stdout = %q", got)
		}
	})

	t.Run("unopenable stdout", func(t *testing.T) {
		dir := t.TempDir()
		blocker := filepath.Join(dir, "file")
		if err := os.WriteFile(blocker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(blocker, "out.txt")
		err := coreErr(t, bashEcho.Submit(dfk, parsl.Val("x"), parsl.Stdout(bad)))
		coreContains(t, "error", err.Error(), bad)
	})
}

func TestBashExitCodes(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec.sh")
	if err := os.WriteFile(noexec, []byte("#!/bin/bash\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cmd  string
		code int
		msg  string
	}{
		{"division by zero", "echo $((5/0))", 1, "exit code 1"},
		{"exit 15", "exit 15", 15, "exit code 15"},
		{"command not found", "no_such_command_parsl_go_test", 127, "command not found"},
		{"not executable", bashQuote(noexec), 126, "not executable"},
		{"killed by signal", "kill -TERM $$", 128 + 15, "exit code 143"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errf := filepath.Join(t.TempDir(), "err.txt")
			f := bashRun.Submit(dfk, parsl.Val(tc.cmd), parsl.Stderr(errf))
			err := coreErr(t, f)
			be := coreAs[*parsl.BashExitError](t, err)
			if be.ExitCode != tc.code {
				t.Errorf("ExitCode = %d, want %d", be.ExitCode, tc.code)
			}
			if be.TaskID != f.TaskID() || be.App != "test.bash.run" || be.Stderr != errf {
				t.Errorf("BashExitError = %+v", be)
			}
			coreContains(t, "error", err.Error(), tc.msg, "test.bash.run", errf)
			if f.State() != parsl.StateFailed {
				t.Errorf("state %v", f.State())
			}
		})
	}
}

func TestBashBuilderErrors(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	err := coreErr(t, bashEmpty.Submit(dfk))
	coreContains(t, "error", err.Error(), "empty command")
	coreAs[*parsl.AppError](t, err)

	err = coreErr(t, bashBadBuild.Submit(dfk, parsl.Val(3)))
	if ae := coreAs[*parsl.AppError](t, err); ae.Err == nil || !strings.Contains(ae.Message, "cannot build a command for 3") {
		t.Errorf("builder error: %+v", ae)
	}
	err = coreErr(t, bashBadBuild.Submit(dfk, parsl.Val(-1)))
	if ae := coreAs[*parsl.AppError](t, err); !ae.Panicked || ae.Message != "negative" {
		t.Errorf("builder panic: %+v", ae)
	}
}

func TestBashWalltime(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	dir := t.TempDir()

	t.Run("kills", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(dir, "marker")
		// The background child must die with the group: it would create the
		// marker after the walltime.
		cmd := fmt.Sprintf("(sleep 1; touch %s) & sleep 30", bashQuote(marker))
		start := time.Now()
		f := bashRun.Submit(dfk, parsl.Val(cmd), parsl.Walltime(100*time.Millisecond))
		err := coreErr(t, f)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("walltime kill took %s", d)
		}
		we := coreAs[*parsl.WalltimeError](t, err)
		if we.Walltime != 100*time.Millisecond || we.App != "test.bash.run" {
			t.Errorf("WalltimeError = %+v", we)
		}
		if _, ok := errors.AsType[*parsl.BashExitError](err); ok {
			t.Errorf("a walltime kill must not look like an exit code: %v", err)
		}
		time.Sleep(1500 * time.Millisecond)
		if _, err := os.Stat(marker); err == nil {
			t.Error("a background child of the killed command survived the walltime")
		}
	})

	t.Run("short sleep, tiny walltime", func(t *testing.T) {
		t.Parallel()
		// Parsl's test_apptimeout: walltime 0.01 s on sleep 0.05.
		err := coreErr(t, bashRun.Submit(dfk, parsl.Val("sleep 0.5"), parsl.Walltime(10*time.Millisecond)))
		coreAs[*parsl.WalltimeError](t, err)
	})

	t.Run("longer walltime is fine", func(t *testing.T) {
		t.Parallel()
		if got := coreGet(t, bashRun.Submit(dfk, parsl.Val("sleep 0.05"), parsl.Walltime(10*time.Second))); got != 0 {
			t.Errorf("got %d", got)
		}
	})
}

func TestBashOutputs(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	dir := t.TempDir()

	t.Run("missing", func(t *testing.T) {
		made := filepath.Join(dir, "made.txt")
		missing := filepath.Join(dir, "missing.txt")
		f := bashRun.Submit(dfk, parsl.Val("touch "+bashQuote(made)),
			parsl.Outputs(parsl.NewFile(made), parsl.NewFile(missing)))
		err := coreErr(t, f)
		me := coreAs[*parsl.MissingOutputsError](t, err)
		if len(me.Paths) != 1 || me.Paths[0] != missing {
			t.Errorf("MissingOutputsError.Paths = %v, want [%s]", me.Paths, missing)
		}
		coreContains(t, "error", err.Error(), "missing.txt")
		if strings.Contains(err.Error(), "made.txt") {
			t.Errorf("error names an output that exists: %v", err)
		}
	})

	t.Run("present", func(t *testing.T) {
		out := filepath.Join(dir, "present.txt")
		f := bashRun.Submit(dfk, parsl.Val("echo data > "+bashQuote(out)), parsl.Outputs(parsl.NewFile(out)))
		if got := coreGet(t, f); got != 0 {
			t.Errorf("got %d", got)
		}
	})

	t.Run("Go app outputs", func(t *testing.T) {
		missing := filepath.Join(dir, "go-missing.txt")
		err := coreErr(t, coreDouble.Submit(dfk, parsl.Val(1), parsl.Outputs(parsl.NewFile(missing))))
		coreAs[*parsl.MissingOutputsError](t, err)
	})
}

func TestBashPipeline(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	dir := t.TempDir()
	// Go computes, bash writes a file, Go reads it, bash writes again, Go
	// reads again: dependencies through the bash futures order the steps.
	first := filepath.Join(dir, "first.txt")
	second := filepath.Join(dir, "second.txt")
	w1 := bashWriteValue.Submit(dfk, coreDouble.Submit(dfk, parsl.Val(5)), parsl.Val(first),
		parsl.Outputs(parsl.NewFile(first)))
	r1 := bashReadInt.Submit(dfk, w1, parsl.Val(first))
	w2 := bashWriteValue.Submit(dfk, coreInc.Submit(dfk, r1), parsl.Val(second),
		parsl.Outputs(parsl.NewFile(second)))
	r2 := bashReadInt.Submit(dfk, w2, parsl.Val(second))
	if got := coreGet(t, r2); got != 11 {
		t.Errorf("pipeline result = %d, want 11", got)
	}
	if got := coreGet(t, r1); got != 10 {
		t.Errorf("first read = %d, want 10", got)
	}

	// A failed bash step stops the pipeline with a DependencyError naming it.
	bad := bashRun.Submit(dfk, parsl.Val("exit 3"))
	r3 := bashReadInt.Submit(dfk, bad, parsl.Val(first))
	err := coreErr(t, r3)
	de := coreAs[*parsl.DependencyError](t, err)
	if len(de.TaskIDs()) != 1 || de.TaskIDs()[0] != bad.TaskID() {
		t.Errorf("TaskIDs() = %v, want [%d]", de.TaskIDs(), bad.TaskID())
	}
	if be := coreAs[*parsl.BashExitError](t, err); be.ExitCode != 3 {
		t.Errorf("root cause exit code %d", be.ExitCode)
	}
}

func TestBashParallel(t *testing.T) {
	t.Parallel()
	dfk := coreLoad(t, parsl.Config{})
	dir := t.TempDir()
	const n = 20
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = bashEchoBoth.Submit(dfk, parsl.Val(strconv.Itoa(i)),
			parsl.Stdout(filepath.Join(dir, fmt.Sprintf("%d.out", i))),
			parsl.Stderr(filepath.Join(dir, fmt.Sprintf("%d.err", i))))
	}
	for i, f := range fs {
		coreGet(t, f)
		if got := coreReadFile(t, filepath.Join(dir, fmt.Sprintf("%d.out", i))); got != fmt.Sprintf("out:%d\n", i) {
			t.Errorf("task %d stdout = %q", i, got)
		}
	}
}
