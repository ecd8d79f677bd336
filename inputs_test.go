package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parsl-go/parsl"
)

var (
	// inCat concatenates its inputs into out.
	inCat = parsl.RegisterBash2("test.inputs.cat", func(ctx context.Context, in []parsl.File, out parsl.File) (string, error) {
		cmd := "cat"
		for _, f := range in {
			cmd += fmt.Sprintf(" %q", f.Path())
		}
		return cmd + fmt.Sprintf(" > %q", out.Path()), nil
	})
	// inPaths returns the paths a Go app receives.
	inPaths = parsl.Register1("test.inputs.paths", func(ctx context.Context, in []parsl.File) ([]string, error) {
		out := make([]string, len(in))
		for i, f := range in {
			out[i] = f.URL
		}
		return out, nil
	})
)

// TestInputs: Inputs mixes a remote URL (staged in), a local path and a
// DataFuture (a dependency); the bash app gets local paths in order.
func TestInputs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a.txt" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("A"))
	}))
	defer srv.Close()
	dfk, ctx := stgDFK(t)
	dir := t.TempDir()
	b := filepath.Join(dir, "b.txt")
	if err := os.WriteFile(b, []byte("B"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The third input is the output of an app: a DataFuture.
	if err := os.WriteFile(filepath.Join(dir, "lower.txt"), []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := parsl.NewFile(filepath.Join(dir, "c.txt"))
	upC := stgUpper.Submit(dfk, parsl.NewFile(filepath.Join(dir, "lower.txt")), c, parsl.Outputs(c))

	out := parsl.NewFile(filepath.Join(dir, "all.txt"))
	all := inCat.Submit(dfk, parsl.Inputs(parsl.NewFile(srv.URL+"/a.txt"), parsl.NewFile(b), upC.Outputs()[0]), out, parsl.Outputs(out))
	if _, err := all.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out.Path()); string(got) != "ABC" {
		t.Fatalf("all.txt = %q, want ABC", got)
	}

	paths, err := inPaths.Submit(dfk, parsl.Inputs(parsl.NewFile(srv.URL+"/a.txt"), c)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || !filepath.IsAbs(paths[0]) || filepath.Base(paths[0]) != "a.txt" || paths[1] != c.URL {
		t.Fatalf("app received %q, want a staged a.txt and %s", paths, c.URL)
	}
	if none, err := inPaths.Submit(dfk, parsl.Inputs()).Get(ctx); err != nil || len(none) != 0 {
		t.Fatalf("no inputs: %v, %v", none, err)
	}
}

// TestInputsErrors: a failed download fails the task with a
// DependencyError naming the URL; a nil element fails the submit.
func TestInputsErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dfk, ctx := stgDFK(t)

	_, err := inPaths.Submit(dfk, parsl.Inputs(parsl.NewFile(srv.URL+"/gone.txt"))).Get(ctx)
	var dep *parsl.DependencyError
	if !errors.As(err, &dep) || !strings.Contains(err.Error(), srv.URL+"/gone.txt") {
		t.Fatalf("404: got %v, want a DependencyError naming the URL", err)
	}

	var nilFuture *parsl.Future[parsl.File]
	_, err = inPaths.Submit(dfk, parsl.Inputs(parsl.NewFile("x"), nilFuture)).Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "input 2") {
		t.Fatalf("nil input: got %v, want an error naming input 2", err)
	}
}
