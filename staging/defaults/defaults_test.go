package defaults_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/parsl-go/parsl/staging/defaults"
)

func TestUnknownScheme(t *testing.T) {
	r := defaults.Registry(t.TempDir())
	u, _ := url.Parse("gopher://x")
	err := r.StageIn(context.Background(), u, "x")
	want := `unknown URL scheme "gopher" in gopher://x; supported: file, ftp, http, https, rsync, ssh`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
