package staging_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/parsl-go/parsl/staging"
)

type fake struct{ schemes []string }

func (f fake) Schemes() []string                              { return f.schemes }
func (fake) StageIn(context.Context, *url.URL, string) error  { return nil }
func (fake) StageOut(context.Context, string, *url.URL) error { return nil }

func TestUnknownSchemeListsSupported(t *testing.T) {
	r := staging.NewRegistry(staging.SharedFS{}, fake{[]string{"http", "https"}}, fake{[]string{"rsync"}})
	u, _ := url.Parse("gopher://x")
	_, err := r.ProviderFor(u)
	want := `unknown URL scheme "gopher" in gopher://x; supported: file, http, https, rsync`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var use *staging.UnknownSchemeError
	if !errors.As(err, &use) {
		t.Fatalf("not an UnknownSchemeError: %T", err)
	}
	if _, err := r.Lookup("HTTPS"); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Lookup(""); err != nil || p == nil {
		t.Fatalf("empty scheme should be file: %v", err)
	}
}

func TestFirstProviderWins(t *testing.T) {
	a, b := fake{[]string{"x"}}, fake{[]string{"x", "y"}}
	r := staging.NewRegistry(a, b)
	if p, _ := r.Lookup("x"); p.(fake).schemes[0] != "x" || len(p.(fake).schemes) != 1 {
		t.Fatal("second provider took x")
	}
	if _, err := r.Lookup("y"); err != nil {
		t.Fatal(err)
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"data/x.csv":           "file:data/x.csv",
		"/abs/x":               "file:///abs/x",
		"file:///abs/x":        "file:///abs/x",
		"HTTPS://h/x":          "https://h/x",
		"alice@host:/data/x":   "ssh://alice@host/data/x",
		"bob@host:rel/x":       "ssh://bob@host/~/rel/x",
		"rsync://h/mod/x":      "rsync://h/mod/x",
		"C:/windows/style/odd": "file:C:/windows/style/odd",
	} {
		u, err := staging.ParseURL(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if u.String() != want && !(u.Scheme == "file" && staging.LocalPath(u) == in) {
			t.Errorf("%s: got %s, want %s", in, u, want)
		}
	}
}

func TestResolvePathRefusesEscape(t *testing.T) {
	wd := t.TempDir()
	for _, bad := range []string{"../x", "a/../../x", ".."} {
		if _, err := staging.ResolvePath(wd, bad); !errors.Is(err, staging.ErrEscapesWorkDir) {
			t.Errorf("%q: got %v, want ErrEscapesWorkDir", bad, err)
		}
	}
	got, err := staging.ResolvePath(wd, "a/../b/c")
	if err != nil || got != filepath.Join(wd, "b/c") {
		t.Fatalf("got %q, %v", got, err)
	}
	if got, err := staging.ResolvePath(wd, "/abs/../x"); err != nil || got != "/x" {
		t.Fatalf("absolute: got %q, %v", got, err)
	}
}

func TestSharedFS(t *testing.T) {
	ctx := context.Background()
	wd := t.TempDir()
	p := staging.SharedFS{WorkDir: wd}
	src := filepath.Join(wd, "in.txt")
	data := []byte("hello staging")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "file", Path: src}

	// Already in place: no copy, no temp files.
	if err := p.StageIn(ctx, u, "in.txt"); err != nil {
		t.Fatal(err)
	}
	if err := p.StageIn(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(wd); len(ents) != 1 {
		t.Fatalf("stage-in in place created files: %v", ents)
	}
	// Elsewhere: copied.
	if err := p.StageIn(ctx, u, "sub/copy.txt"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(wd, "sub/copy.txt")); !bytes.Equal(got, data) {
		t.Fatalf("copy = %q", got)
	}
	// Stage-out to another local path.
	out := filepath.Join(t.TempDir(), "out", "o.txt")
	if err := p.StageOut(ctx, "in.txt", &url.URL{Scheme: "file", Path: out}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatalf("stage-out = %q", got)
	}
	// Missing source names the URL.
	missing := &url.URL{Scheme: "file", Path: filepath.Join(wd, "nope")}
	if err := p.StageIn(ctx, missing, "x"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing source: %v", err)
	}
	if err := p.StageIn(ctx, u, "../escape"); !errors.Is(err, staging.ErrEscapesWorkDir) {
		t.Fatalf("escape: %v", err)
	}
}

type downloadOnlyFake struct{ fake }

func (downloadOnlyFake) DownloadOnly() bool { return true }

func TestProviderForStageOut(t *testing.T) {
	r := staging.NewRegistry(staging.SharedFS{}, downloadOnlyFake{fake{[]string{"http", "https"}}}, fake{[]string{"rsync"}})
	for _, c := range []struct{ url, err string }{
		{"file:///x", ""},
		{"rsync://h/m/x", ""},
		{"https://h/x", "staging: cannot stage out https://h/x: https URLs can only be downloaded; stage outputs out to one of: file, rsync"},
		{"gopher://h/x", `unknown URL scheme "gopher" in gopher://h/x; supported: file, http, https, rsync`},
	} {
		u, _ := url.Parse(c.url)
		_, err := r.ProviderForStageOut(u)
		if c.err == "" && err != nil || c.err != "" && (err == nil || err.Error() != c.err) {
			t.Errorf("%s: got %v, want %q", c.url, err, c.err)
		}
		if c.url == "https://h/x" && !errors.Is(err, staging.ErrUnsupported) {
			t.Errorf("%s: not ErrUnsupported", c.url)
		}
	}
}
