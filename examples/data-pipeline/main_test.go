package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

func TestMain(m *testing.M) {
	parsl.Main()
	os.Exit(m.Run())
}

// TestPipeline runs the whole workflow with a temporary destination and
// checks what arrived there.
func TestPipeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Chdir(t.TempDir()) // the run directory goes here
	dest := t.TempDir()
	var out bytes.Buffer
	if err := run(ctx, &out, dest); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	for _, name := range []string{"rivers", "stars", "trees"} {
		b, err := os.ReadFile(filepath.Join(dest, "counts", name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), " the\n") {
			t.Errorf("counts/%s.txt has no count for \"the\":\n%s", name, b)
		}
	}
	report, err := os.ReadFile(filepath.Join(dest, "report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// "the" is in all three documents: 6 + 1 + 5 times.
	if !strings.Contains(string(report), "the       12 in 3\n") {
		t.Errorf("report.txt:\n%s", report)
	}
	if !strings.Contains(out.String(), `most common shared word "the" (12 times)`) {
		t.Errorf("summary:\n%s", out.String())
	}
}
