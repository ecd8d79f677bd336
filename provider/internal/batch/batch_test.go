package batch

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"": "''", "/bin/x": "/bin/x", "a b": "'a b'", "it's": `'it'\''s'`, "$HOME": "'$HOME'"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestFormatHMSAndChunks(t *testing.T) {
	if got := FormatHMS(90*time.Minute + 500*time.Millisecond); got != "01:30:01" {
		t.Errorf("FormatHMS = %s", got)
	}
	if got := FormatHMS(0); got != "00:00:01" {
		t.Errorf("FormatHMS(0) = %s", got)
	}
	c := Chunks([]string{"1", "2", "3", "4", "5"}, 2)
	if len(c) != 3 || len(c[2]) != 1 {
		t.Errorf("Chunks = %v", c)
	}
	if Chunks(nil, 2) != nil {
		t.Error("Chunks(nil) not empty")
	}
}

func TestRunErrors(t *testing.T) {
	r := Runner{Scheduler: "x", Timeout: 5 * time.Second, Hint: func(*CommandError) string { return "check x" }}
	_, err := r.Run(context.Background(), strings.NewReader("in"), "sh", "-c", `cat >/dev/null; echo out; echo bad >&2; exit 4`)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 4 || ce.Stdout != "out\n" || !strings.Contains(err.Error(), "exited with code 4: bad; check x") {
		t.Fatalf("error %v", err)
	}
	_, err = r.Run(context.Background(), nil, "no-such-command-here")
	if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "on PATH") {
		t.Fatalf("error %v", err)
	}
	se := NewSubmitError("x", "3", "/s", ce)
	if se.ExitCode != 4 || se.Stderr != "bad\n" || !errors.Is(se, ce) {
		t.Errorf("SubmitError %+v", se)
	}
}
