package parsl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

var (
	stgRead = parsl.Register1("test.staging.read", func(ctx context.Context, f parsl.File) (string, error) {
		b, err := os.ReadFile(f.Path())
		return string(b), err
	})
	stgUpper = parsl.RegisterBash2("test.staging.upper", func(ctx context.Context, in, out parsl.File) (string, error) {
		return "tr a-z A-Z < '" + in.Path() + "' > '" + out.Path() + "'", nil
	})
	stgCount = parsl.Register1("test.staging.count", func(ctx context.Context, f parsl.File) (int, error) {
		b, err := os.ReadFile(f.Path())
		return len(b), err
	})
)

func stgDFK(t *testing.T) (*parsl.DFK, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dfk.Close(context.Background()) })
	return dfk, ctx
}

// TestStageInHTTP: a File argument with an https URL is downloaded by a
// stage-in task before the app runs, and the app sees a local path.
func TestStageInHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/data/hello.txt" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("hello from the server"))
	}))
	defer srv.Close()
	dfk, ctx := stgDFK(t)

	got, err := stgRead.Submit(dfk, parsl.Val(parsl.NewFile(srv.URL+"/data/hello.txt"))).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello from the server" {
		t.Fatalf("app read %q", got)
	}

	// A 404 fails the stage-in task; the app's error names the URL.
	_, err = stgRead.Submit(dfk, parsl.Val(parsl.NewFile(srv.URL+"/missing.txt"))).Get(ctx)
	var dep *parsl.DependencyError
	if !errors.As(err, &dep) || !strings.Contains(err.Error(), "/missing.txt") {
		t.Fatalf("404 stage-in: got %v, want a DependencyError naming the URL", err)
	}
}

// TestStageInUnknownScheme: an unknown scheme fails at submit, listing the
// supported ones.
func TestStageInUnknownScheme(t *testing.T) {
	dfk, ctx := stgDFK(t)
	_, err := stgRead.Submit(dfk, parsl.Val(parsl.NewFile("gopher://example.org/x"))).Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "gopher") || !strings.Contains(err.Error(), "https") {
		t.Fatalf("got %v, want an error naming gopher and listing supported schemes", err)
	}
}

// TestDataFuturesChain: outputs of one app are inputs of the next, through
// Outputs() futures, across three apps.
func TestDataFuturesChain(t *testing.T) {
	dfk, ctx := stgDFK(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	mid := parsl.NewFile(filepath.Join(dir, "mid.txt"))
	out := parsl.NewFile(filepath.Join(dir, "out.txt"))

	first := stgUpper.Submit(dfk, parsl.Val(parsl.NewFile(in)), parsl.Val(mid), parsl.Outputs(mid))
	second := stgUpper.Submit(dfk, first.Outputs()[0], parsl.Val(out), parsl.Outputs(out))
	n, err := stgCount.Submit(dfk, second.Outputs()[0]).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	b, _ := os.ReadFile(out.Path())
	if string(b) != "ABC" {
		t.Fatalf("out.txt %q, want ABC", b)
	}
	f, err := first.Outputs()[0].Get(ctx)
	if err != nil || f.Path() != mid.Path() {
		t.Fatalf("output future %v, %v; want %s", f, err, mid.Path())
	}
}
