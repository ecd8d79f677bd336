package parsl_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/monitoring/metrics"
)

var (
	metricsInc  = parsl.Register1("test.metrics.inc", func(ctx context.Context, x int) (int, error) { return x + 1, nil })
	metricsFail = parsl.Register0("test.metrics.fail", func(ctx context.Context) (int, error) {
		return 0, errors.New("always fails")
	})
)

// TestMetricsEndpoint runs 20 tasks, one failing, with only the metrics
// endpoint on (no database), scrapes /metrics over real HTTP, and checks
// the port is released by Close.
func TestMetricsEndpoint(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: dir, NoSignalHandler: true,
		Monitoring: &parsl.MonitoringConfig{DBPath: parsl.NoDatabase, MetricsAddr: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := dfk.MetricsAddr()
	if addr == nil {
		dfk.Close(ctx)
		t.Fatal("MetricsAddr is nil with Monitoring.MetricsAddr set")
	}
	var fs []*parsl.Future[int]
	for i := 0; i < 19; i++ {
		fs = append(fs, metricsInc.Submit(dfk, parsl.Val(i)))
	}
	bad := metricsFail.Submit(dfk)
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bad.Get(ctx); err == nil {
		t.Fatal("test.metrics.fail succeeded")
	}
	if err := dfk.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	body := httpGet(t, "http://"+addr.String()+"/metrics")
	for _, line := range []string{
		`parsl_tasks_total{state="exec_done"} 19`,
		`parsl_tasks_total{state="failed"} 1`,
		`parsl_tasks{state="pending"} 0`,
		`parsl_tasks{state="launched"} 0`,
		`parsl_task_tries_total 1`,
		`parsl_task_duration_seconds_count{executor="threads"} 20`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if !strings.Contains(body, "go_goroutines") {
		t.Error("/metrics lacks the Go runtime collector")
	}
	if _, err := os.Stat(filepath.Join(dir, "monitoring.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DBPath NoDatabase still made monitoring.db (stat: %v)", err)
	}

	if err := dfk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", addr)
	}
}

// TestMetricsBusyPort: a port already in use fails Load with an error that
// names the address.
func TestMetricsBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: t.TempDir(), NoSignalHandler: true,
		Monitoring: &parsl.MonitoringConfig{DBPath: parsl.NoDatabase, MetricsAddr: ln.Addr().String()}})
	if err == nil {
		dfk.Close(ctx)
		t.Fatal("Load succeeded on a busy port")
	}
	var le *metrics.ListenError
	if !errors.As(err, &le) || le.Addr != ln.Addr().String() || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Load error %v: want a *metrics.ListenError naming %s", err, ln.Addr())
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
