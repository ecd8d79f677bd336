package httpstage_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl/staging"
	"github.com/parsl-go/parsl/staging/httpstage"
)

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func reprDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
}

// serveFile serves data with ranges, a strong ETag and a Repr-Digest.
func serveFile(data []byte, digest bool) http.HandlerFunc {
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		if digest {
			w.Header().Set("Repr-Digest", reprDigest(data))
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(data))
	}
}

// dieAfter wraps a writer so the handler aborts the connection after n body
// bytes, as a server crashing or a reset connection would.
type dieAfter struct {
	http.ResponseWriter
	left int
}

func (d *dieAfter) Write(p []byte) (int, error) {
	if len(p) > d.left {
		n, _ := d.ResponseWriter.Write(p[:d.left])
		d.ResponseWriter.(http.Flusher).Flush()
		_ = n
		panic(http.ErrAbortHandler)
	}
	d.left -= len(p)
	return d.ResponseWriter.Write(p)
}

func provider(c *http.Client, wd string) *httpstage.Provider {
	return &httpstage.Provider{Client: c, WorkDir: wd, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// dirNames lists dir so tests can check that no temporary files remain.
func dirNames(t testing.TB, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func checkFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: content differs (got %d bytes, want %d)", path, len(got), len(want))
	}
}

func TestStageInIntact(t *testing.T) {
	data := randBytes(t, 3<<20+17)
	for _, tc := range []struct {
		name string
		srv  *httptest.Server
	}{
		{"http", httptest.NewServer(serveFile(data, true))},
		{"https", httptest.NewTLSServer(serveFile(data, true))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.srv.Close()
			wd := t.TempDir()
			// srv.Client trusts the test server's self-signed certificate.
			p := provider(tc.srv.Client(), wd)
			if err := p.StageIn(context.Background(), mustURL(t, tc.srv.URL+"/data.bin"), "in/data.bin"); err != nil {
				t.Fatal(err)
			}
			checkFile(t, filepath.Join(wd, "in/data.bin"), data)
			if names := dirNames(t, filepath.Join(wd, "in")); len(names) != 1 {
				t.Fatalf("leftover files: %v", names)
			}
		})
	}
}

func TestTLSUntrustedNotRetried(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	// The handshake failure is the point of the test; keep it out of the log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	p := provider(&http.Client{}, t.TempDir()) // default roots: test cert untrusted
	err := p.StageIn(context.Background(), mustURL(t, srv.URL+"/x"), "x")
	if err == nil || !strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "attempts") {
		t.Fatalf("got %v, want a certificate error without retries", err)
	}
}

func TestResumeAfterMidBodyFailure(t *testing.T) {
	data := randBytes(t, 1<<20)
	var reqs atomic.Int32
	var mu sync.Mutex
	var ranges []string
	inner := serveFile(data, true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		if reqs.Add(1) == 1 {
			inner(&dieAfter{ResponseWriter: w, left: len(data) / 2}, r)
			return
		}
		inner(w, r)
	}))
	defer srv.Close()
	wd := t.TempDir()
	if err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "f"); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(wd, "f"), data)
	if len(ranges) != 2 || ranges[1] == "" {
		t.Fatalf("requests' Range headers = %q, want a resumed second request", ranges)
	}
}

func TestRestartWhenNoRanges(t *testing.T) {
	data := randBytes(t, 1<<20)
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			t.Errorf("Range sent to a server that did not advertise ranges")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		var out http.ResponseWriter = w
		if n := reqs.Add(1); n <= 2 {
			out = &dieAfter{ResponseWriter: w, left: int(n) * len(data) / 3}
		}
		out.Write(data)
	}))
	defer srv.Close()
	wd := t.TempDir()
	if err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "f"); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(wd, "f"), data)
	if reqs.Load() != 3 {
		t.Fatalf("requests = %d, want 3", reqs.Load())
	}
}

func TestServerErrorsRetried(t *testing.T) {
	data := []byte("eventually")
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqs.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	wd := t.TempDir()
	if err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "f"); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(wd, "f"), data)
}

func TestGivesUpAndLeavesNothing(t *testing.T) {
	data := randBytes(t, 100000)
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		(&dieAfter{ResponseWriter: w, left: 1000}).Write(data)
	}))
	defer srv.Close()
	wd := t.TempDir()
	p := provider(srv.Client(), wd)
	p.MaxAttempts = 3
	u := srv.URL + "/flaky"
	err := p.StageIn(context.Background(), mustURL(t, u), "f")
	if err == nil || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("got %v", err)
	}
	if reqs.Load() != 3 {
		t.Fatalf("requests = %d, want 3", reqs.Load())
	}
	if names := dirNames(t, wd); len(names) != 0 {
		t.Fatalf("files left behind: %v", names)
	}
}

func TestStatusErrorsNameURL(t *testing.T) {
	for _, code := range []int{404, 401, 403} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var reqs atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reqs.Add(1)
				http.Error(w, "no", code)
			}))
			defer srv.Close()
			wd := t.TempDir()
			u := srv.URL + "/secret/file.dat"
			err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, u), "f")
			var se *httpstage.StatusError
			if !errors.As(err, &se) || se.StatusCode != code {
				t.Fatalf("got %v, want StatusError %d", err, code)
			}
			if msg := err.Error(); !strings.Contains(msg, u) || !strings.Contains(msg, strconv.Itoa(code)) {
				t.Fatalf("message %q does not name URL and status", msg)
			}
			if reqs.Load() != 1 {
				t.Fatalf("client errors retried: %d requests", reqs.Load())
			}
			if names := dirNames(t, wd); len(names) != 0 {
				t.Fatalf("files left behind: %v", names)
			}
			t.Log(err)
		})
	}
}

func TestOversendRefused(t *testing.T) {
	// The first response declares 1000 bytes and dies half-way; the resumed
	// 206 claims bytes 500-999 but streams (chunked) 1500 bytes.
	data := randBytes(t, 1000)
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Accept-Ranges", "bytes")
		if reqs.Add(1) == 1 {
			w.Header().Set("Content-Length", "1000")
			(&dieAfter{ResponseWriter: w, left: 500}).Write(data)
			return
		}
		w.Header().Set("Content-Range", "bytes 500-999/1000")
		w.WriteHeader(http.StatusPartialContent)
		w.(http.Flusher).Flush() // no Content-Length: chunked
		w.Write(data)
		w.Write(data[:500])
	}))
	defer srv.Close()
	wd := t.TempDir()
	err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "f")
	var ie *httpstage.IntegrityError
	if !errors.As(err, &ie) || ie.What != "oversend" {
		t.Fatalf("got %v, want oversend IntegrityError", err)
	}
	if names := dirNames(t, wd); len(names) != 0 {
		t.Fatalf("files left behind: %v", names)
	}
	t.Log(err)
}

func TestChecksumMismatchDiscarded(t *testing.T) {
	data := []byte("the real content")
	for _, hdr := range []string{"Repr-Digest", "Content-Digest", "Digest"} {
		t.Run(hdr, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				v := reprDigest([]byte("other content"))
				if hdr == "Digest" {
					s := sha256.Sum256([]byte("other content"))
					v = "SHA-256=" + base64.StdEncoding.EncodeToString(s[:])
				}
				w.Header().Set(hdr, v)
				w.Write(data)
			}))
			defer srv.Close()
			wd := t.TempDir()
			err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "f")
			var ie *httpstage.IntegrityError
			if !errors.As(err, &ie) || ie.What != "checksum" {
				t.Fatalf("got %v, want checksum IntegrityError", err)
			}
			if names := dirNames(t, wd); len(names) != 0 {
				t.Fatalf("files left behind: %v", names)
			}
		})
	}
}

func TestETagIsNotAChecksum(t *testing.T) {
	data := []byte("content")
	md := md5.Sum([]byte("something else"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"`+hex.EncodeToString(md[:])+`"`)
		w.Write(data)
	}))
	defer srv.Close()
	wd := t.TempDir()
	if err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "f"); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(wd, "f"), data)
}

func TestEscapeRefused(t *testing.T) {
	srv := httptest.NewServer(serveFile([]byte("x"), false))
	defer srv.Close()
	parent := t.TempDir()
	wd := filepath.Join(parent, "wd")
	os.Mkdir(wd, 0o755)
	err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "../evil")
	if !errors.Is(err, staging.ErrEscapesWorkDir) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
		t.Fatal("file written outside the working directory")
	}
}

func TestContextDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	wd := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := provider(srv.Client(), wd).StageIn(ctx, mustURL(t, srv.URL+"/slow"), "f")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("deadline not honoured promptly")
	}
	if names := dirNames(t, wd); len(names) != 0 {
		t.Fatalf("files left behind: %v", names)
	}
}

func TestDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	os.Mkdir(dir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tiny tmpfs (needs root): %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	data := randBytes(t, 1<<20)
	srv := httptest.NewServer(serveFile(data, false))
	defer srv.Close()
	err := provider(srv.Client(), dir).StageIn(context.Background(), mustURL(t, srv.URL+"/big"), "big")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "free space") {
		t.Fatalf("got %v, want ENOSPC with a hint", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("partial file left on full disk: %v", names)
	}
	t.Log(err)
}

func TestStageOutUnsupported(t *testing.T) {
	err := (&httpstage.Provider{}).StageOut(context.Background(), "x", mustURL(t, "https://h/x"))
	if !errors.Is(err, staging.ErrUnsupported) {
		t.Fatalf("got %v", err)
	}
}

// smallFileServer answers every path with a short body naming it.
func smallFileServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "file %s\n", r.URL.Path)
	}))
}

func stageSmall(ctx context.Context, p *httpstage.Provider, base string, from, to, workers int) error {
	var next atomic.Int64
	next.Store(int64(from))
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= to {
					errs <- nil
					return
				}
				name := fmt.Sprintf("d%02d/f%05d", i%100, i)
				u, _ := url.Parse(base + "/" + name)
				if err := p.StageIn(ctx, u, name); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// TestManySmallFiles stages 10,000 small files with 16 concurrent workers
// (as the task graph would run independent stage-ins) and reports the
// overhead per file. It skips fsync to keep the test fast on disks where
// fsync costs milliseconds; BenchmarkSmallFiles measures all variants.
func TestManySmallFiles(t *testing.T) {
	n := 10000
	if testing.Short() || raceEnabled {
		n = 1000
	}
	srv := smallFileServer()
	defer srv.Close()
	wd := t.TempDir()
	p := provider(srv.Client(), wd)
	p.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = 16
	p.NoSync = true
	start := time.Now()
	if err := stageSmall(context.Background(), p, srv.URL, 0, n, 16); err != nil {
		t.Fatal(err)
	}
	per := time.Since(start) / time.Duration(n)
	t.Logf("%d small files, 16 workers, no fsync: %v per file", n, per)
	checkFile(t, filepath.Join(wd, "d07/f00907"), []byte("file /d07/f00907\n"))
	if per > 2*time.Millisecond && !raceEnabled {
		t.Errorf("%v per file, want ≤ 1 ms (2 ms allowed for noisy machines)", per)
	}
}

// BenchmarkSmallFiles reports µs per small file: sequential and 16-way
// parallel, with and without fsync.
func BenchmarkSmallFiles(b *testing.B) {
	srv := smallFileServer()
	defer srv.Close()
	for _, workers := range []int{1, 16} {
		for _, noSync := range []bool{false, true} {
			b.Run(fmt.Sprintf("workers=%d/nosync=%v", workers, noSync), func(b *testing.B) {
				wd := b.TempDir()
				p := provider(srv.Client(), wd)
				p.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = 16
				p.NoSync = noSync
				b.ResetTimer()
				start := time.Now()
				if err := stageSmall(context.Background(), p, srv.URL, 0, b.N, workers); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/file")
			})
		}
	}
}

// BenchmarkStageInHTTP downloads one file over loopback; its size in bytes
// comes from STAGING_BENCH_SIZE (default 64 MiB). With STAGING_BENCH_URL
// set it downloads that URL instead (for comparing with curl against the
// same external server); STAGING_BENCH_SIZE must then be the file's size.
func BenchmarkStageInHTTP(b *testing.B) {
	size := 64 << 20
	if v := os.Getenv("STAGING_BENCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("STAGING_BENCH_SIZE=%q: %v", v, err)
		}
		size = n
	}
	wd := b.TempDir()
	p := &httpstage.Provider{WorkDir: wd}
	var u *url.URL
	if ext := os.Getenv("STAGING_BENCH_URL"); ext != "" {
		u = mustURL(b, ext)
	} else {
		data := randBytes(b, size)
		srv := httptest.NewServer(serveFile(data, false))
		defer srv.Close()
		u = mustURL(b, srv.URL+"/big")
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		if err := p.StageIn(context.Background(), u, "big"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFileChangedBetweenAttempts: the resumed request's If-Range no longer
// matches, the server sends the new version whole, and the download
// restarts instead of splicing two versions together.
func TestFileChangedBetweenAttempts(t *testing.T) {
	v1, v2 := randBytes(t, 200000), randBytes(t, 150000)
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqs.Add(1) == 1 {
			serveFile(v1, true)(&dieAfter{ResponseWriter: w, left: 100000}, r)
			return
		}
		serveFile(v2, true)(w, r)
	}))
	defer srv.Close()
	wd := t.TempDir()
	if err := provider(srv.Client(), wd).StageIn(context.Background(), mustURL(t, srv.URL+"/f"), "f"); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(wd, "f"), v2)
}
