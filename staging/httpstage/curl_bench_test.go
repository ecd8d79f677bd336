package httpstage_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/parsl-go/parsl/staging/httpstage"
)

// BenchmarkVersusCurl downloads one file from a loopback HTTP server with
// the provider and with `curl -o`, the same bytes from the same server to
// the same directory, so the two can be compared in one run. The size in
// bytes comes from STAGING_BENCH_SIZE (default 64 MiB; use 1073741824 for
// 1 GiB), the directory from STAGING_BENCH_DIR (default a temporary
// directory; /dev/shm takes the disk out). The curl case is skipped when
// curl is not installed. Each iteration replaces the previous file.
func BenchmarkVersusCurl(b *testing.B) {
	size := 64 << 20
	if v := os.Getenv("STAGING_BENCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("STAGING_BENCH_SIZE=%q: %v", v, err)
		}
		size = n
	}
	dir := os.Getenv("STAGING_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		d, err := os.MkdirTemp(dir, "httpstage-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	srv := httptest.NewServer(serveFile(randBytes(b, size), false))
	defer srv.Close()
	u := mustURL(b, srv.URL+"/big")

	b.Run("provider", func(b *testing.B) {
		p := &httpstage.Provider{WorkDir: dir}
		b.SetBytes(int64(size))
		for b.Loop() {
			if err := p.StageIn(context.Background(), u, "provider.bin"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("curl", func(b *testing.B) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			b.Skip("curl not installed")
		}
		dst := filepath.Join(dir, "curl.bin")
		b.SetBytes(int64(size))
		for b.Loop() {
			if out, err := exec.Command(curl, "-sS", "--fail", "-o", dst, u.String()).CombinedOutput(); err != nil {
				b.Fatalf("curl: %v: %s", err, out)
			}
		}
	})
}
