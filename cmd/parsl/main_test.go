package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/parsl-go/parsl"
)

func TestMain(m *testing.M) {
	parsl.Main()
	// Every DFK perf loads must be closed, with its workers gone.
	goleak.VerifyTestMain(m)
}

// run executes the command tree in-process with args and returns its
// stdout, stderr and error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, "version")
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	for _, want := range []string{"parsl ", "github.com/parsl-go/parsl", "revision:", "go: go1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestPerfJSON(t *testing.T) {
	runDir := t.TempDir()
	out, _, err := run(t, "perf", "--tasks", "100,200", "--repeat", "2", "--latency-samples", "100",
		"--threads", "2", "--json", "--run-dir", runDir)
	if err != nil {
		t.Fatalf("perf: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"end_to_end_tasks_per_s", "submit_tasks_per_s", "latency_us", "first_result_ms",
		"peak_rss_bytes", "heap_bytes_per_task", "memo_hit_ns", "machine", "date"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks key %q", k)
		}
	}
	var r perfResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]spread{r.EndToEnd, r.Submit} {
		for _, n := range []string{"100", "200"} {
			s, ok := m[n]
			if !ok {
				t.Fatalf("no throughput for %s tasks: %v", n, m)
			}
			if len(s.Values) != 2 || s.Min <= 0 || s.Min > s.Median || s.Median > s.Max {
				t.Errorf("%s tasks: bad min/median/max %+v", n, s)
			}
		}
	}
	l := r.Latency
	if l.Samples != 100 || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 {
		t.Errorf("bad latency percentiles %+v", l)
	}
	if r.FirstResultMs <= 0 || r.MemoHitNs <= 0 || r.HeapTasks != 200 || r.Threads != 2 {
		t.Errorf("bad result %+v", r)
	}
	if r.Machine.Cores <= 0 || r.Machine.GoVersion == "" {
		t.Errorf("bad machine info %+v", r.Machine)
	}
	// --run-dir is kept, with one run directory per Load.
	dirs, _ := filepath.Glob(filepath.Join(runDir, "[0-9][0-9][0-9]"))
	if len(dirs) != 2 {
		t.Errorf("want 2 run directories in %s, got %v", runDir, dirs)
	}
}

func TestPerfTable(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out, errOut, err := run(t, "perf", "--tasks", "50", "--repeat", "1", "--latency-samples", "20", "--heap-tasks", "30")
	if err != nil {
		t.Fatalf("perf: %v", err)
	}
	for _, want := range []string{"end-to-end tasks/s", "submit tasks/s", "p50", "first result", "memo hit", "30 tasks blocked", "peak RSS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the temporary run directory was not removed: %v", left)
	}
	if errOut != "" {
		t.Errorf("stderr is not a terminal, so perf must be silent there; got %q", errOut)
	}
}

func TestPerfBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--executor", "htex", "--prefetch", "-1"}, "--prefetch must not be negative"},
		{[]string{"--executor", "dask"}, `"dask" is unknown`},
		{[]string{"--tasks", "10,x"}, `"x" is not a positive whole number`},
		{[]string{"--tasks", "0"}, `"0" is not a positive`},
		{[]string{"--tasks", ","}, "no task count"},
		{[]string{"--repeat", "0"}, "--repeat must be at least 1"},
		{[]string{"--threads", "0"}, "--threads must be at least 1"},
		{[]string{"--latency-samples", "0"}, "--latency-samples must be at least 1"},
	} {
		_, _, err := run(t, append([]string{"perf"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("perf %v: got error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestParseTasks(t *testing.T) {
	got, err := parseTasks(" 1000, 10_000 ,100000,")
	if err != nil || len(got) != 3 || got[0] != 1000 || got[1] != 10000 || got[2] != 100000 {
		t.Errorf("parseTasks = %v, %v", got, err)
	}
}

func TestStats(t *testing.T) {
	s := spreadOf([]float64{3, 1, 2, 10})
	if s.Min != 1 || s.Max != 10 || s.Median != 2.5 || s.Values[0] != 3 {
		t.Errorf("spreadOf = %+v", s)
	}
	if fmtInt(1234567.6) != "1,234,568" || fmtInt(999) != "999" || fmtInt(1000) != "1,000" {
		t.Errorf("fmtInt: %s %s %s", fmtInt(1234567.6), fmtInt(999), fmtInt(1000))
	}
}

func TestMachineFiles(t *testing.T) {
	dir := t.TempDir()
	mem := filepath.Join(dir, "meminfo")
	cpu := filepath.Join(dir, "cpuinfo")
	os.WriteFile(mem, []byte("MemFree: 1 kB\nMemTotal:       24576000 kB\n"), 0o644)
	os.WriteFile(cpu, []byte("processor\t: 0\nmodel name\t: Test CPU @ 2GHz\n"), 0o644)
	if got := memTotal(mem); got != 24576000*1024 {
		t.Errorf("memTotal = %d", got)
	}
	if got := cpuModel(cpu); got != "Test CPU @ 2GHz" {
		t.Errorf("cpuModel = %q", got)
	}
	if memTotal(filepath.Join(dir, "none")) != 0 || cpuModel(filepath.Join(dir, "none")) != "" {
		t.Error("missing files should give zero values")
	}
}

func TestProgress(t *testing.T) {
	if _, ok := newProgress(&bytes.Buffer{}, 3).(nopProgress); !ok {
		t.Error("progress on a buffer should be silent")
	}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := newProgress(f, 3).(nopProgress); !ok {
		t.Error("progress on a regular file should be silent")
	}
	// /dev/null is a character device but not a terminal: silent too.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer null.Close()
	if _, ok := newProgress(null, 3).(nopProgress); !ok {
		t.Errorf("progress on %s should be silent", os.DevNull)
	}
	// Drive a bar to the end, both ways, and check that finish returns.
	for _, ok := range []bool{true, false} {
		var p progress = newBar(io.Discard, 3)
		p.step("one")
		p.step("two")
		p.finish(ok)
	}
}

func TestPerfHtexJSON(t *testing.T) {
	for _, tlsArgs := range [][]string{nil, {"--no-tls"}} {
		args := append([]string{"perf", "--executor", "htex", "--tasks", "200", "--repeat", "1", "--latency-samples", "50",
			"--heap-tasks", "50", "--threads", "2", "--prefetch", "16", "--json", "--run-dir", t.TempDir()}, tlsArgs...)
		out, _, err := run(t, args...)
		if err != nil {
			t.Fatalf("perf %v: %v", tlsArgs, err)
		}
		var r perfResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if r.Executor != "htex" || r.EndToEnd["200"].Min <= 0 || r.Latency.P50 <= 0 || r.FirstResultMs <= 0 {
			t.Errorf("bad htex result %+v", r)
		}
		if r.TLS == nil || *r.TLS != (tlsArgs == nil) {
			t.Errorf("tls = %v, want %v", r.TLS, tlsArgs == nil)
		}
		if r.PoolPeakRSSBytes <= 0 {
			t.Errorf("pool peak RSS not measured: %+v", r)
		}
	}
}
