package parsl_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/staging/defaults"
)

// BenchmarkStagedFiles measures what staging in the task graph adds per
// small file. Each op is one 1 KiB file from a loopback HTTP server:
//   - graph: an app task with the file's URL as argument, so a
//     parsl.stage_in task downloads it first (two tasks per file);
//   - provider: the same download with the staging provider alone, from
//     10 goroutines (the internal executor's default concurrency);
//   - local: the app task with a local file, no staging.
//
// graph − provider is the overhead of staging as tasks. Run with
// -benchtime=10000x for 10,000 files. Files go under STAGING_BENCH_DIR
// when set (/dev/shm takes fsync and the disk out), else a temporary
// directory.
func BenchmarkStagedFiles(b *testing.B) {
	tmp := func(b *testing.B) string {
		dir := os.Getenv("STAGING_BENCH_DIR")
		if dir == "" {
			return b.TempDir()
		}
		d, err := os.MkdirTemp(dir, "parsl-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	body := make([]byte, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	var run atomic.Int64 // fresh URLs per run, so nothing is already staged

	perFile := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/file")
	}
	b.Run("graph", func(b *testing.B) {
		dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: tmp(b), NoSignalHandler: true})
		if err != nil {
			b.Fatal(err)
		}
		defer dfk.Close(context.Background())
		r := run.Add(1)
		futs := make([]*parsl.Future[int], b.N)
		b.ResetTimer()
		start := time.Now()
		for i := range futs {
			futs[i] = stgCount.Submit(dfk, parsl.NewFile(fmt.Sprintf("%s/r%d/f%d", srv.URL, r, i)))
		}
		for _, f := range futs {
			if n, err := f.Get(context.Background()); err != nil || n != len(body) {
				b.Fatalf("%d, %v", n, err)
			}
		}
		perFile(b, start)
	})
	b.Run("provider", func(b *testing.B) {
		reg := defaults.Registry("")
		dir := tmp(b)
		r := run.Add(1)
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		b.ResetTimer()
		start := time.Now()
		for range 10 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					u, _ := url.Parse(fmt.Sprintf("%s/r%d/f%d", srv.URL, r, i))
					if err := reg.StageIn(context.Background(), u, filepath.Join(dir, fmt.Sprint(i), "f")); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		perFile(b, start)
	})
	b.Run("local", func(b *testing.B) {
		dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: b.TempDir(), NoSignalHandler: true})
		if err != nil {
			b.Fatal(err)
		}
		defer dfk.Close(context.Background())
		local := filepath.Join(b.TempDir(), "f")
		if err := os.WriteFile(local, body, 0o644); err != nil {
			b.Fatal(err)
		}
		futs := make([]*parsl.Future[int], b.N)
		b.ResetTimer()
		start := time.Now()
		for i := range futs {
			futs[i] = stgCount.Submit(dfk, parsl.NewFile(local))
		}
		for _, f := range futs {
			if _, err := f.Get(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		perFile(b, start)
	})
}
