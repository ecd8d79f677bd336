package bash

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	b.Write([]byte("short\n"))
	if got := b.String(); got != "short\n" {
		t.Errorf("small write: %q", got)
	}
	// Many small writes past the bound: cut at a line start.
	for i := 0; i < 1000; i++ {
		b.Write([]byte("0123456789abcde\n"))
	}
	b.Write([]byte("end\n"))
	got := b.String()
	if len(got) > TailSize || !strings.HasPrefix(got, "0123") || !strings.HasSuffix(got, "abcde\nend\n") {
		t.Errorf("tail of small writes: len %d, %q...", len(got), got[:20])
	}
	// One line longer than the bound is kept cut, not dropped.
	var l tailBuffer
	l.Write([]byte(strings.Repeat("x", 3*TailSize)))
	if got := l.String(); len(got) != TailSize {
		t.Errorf("one long line: len %d, want %d", len(got), TailSize)
	}
}

func TestRunStderrTail(t *testing.T) {
	ctx := context.Background()
	r, err := Run(ctx, Spec{Command: "echo out; echo bad >&2; exit 3"})
	if err != nil || r.ExitCode != 3 || r.StderrTail != "bad\n" {
		t.Errorf("no file: %+v, %v; want exit 3 and tail %q", r, err, "bad\n")
	}
	// With a file: only this run's output, not the banner or an earlier run.
	f := filepath.Join(t.TempDir(), "err")
	for _, w := range []string{"first", "second"} {
		r, err = Run(ctx, Spec{Command: "echo " + w + " >&2", Stderr: f})
		if err != nil || r.StderrTail != w+"\n" {
			t.Errorf("file, run %s: %+v, %v", w, r, err)
		}
	}
	// Stdout and stderr sharing one file: the tail has both.
	r, _ = Run(ctx, Spec{Command: "echo o; echo e >&2", Stdout: f + "2", Stderr: f + "2"})
	if r.StderrTail != "o\ne\n" {
		t.Errorf("shared file: tail %q", r.StderrTail)
	}
}
