package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
)

func TestMain(m *testing.M) {
	parsl.Main() // the htex test's worker pools are copies of this binary
	os.Exit(m.Run())
}

// testOptions is a small batch: 4 samples, of which the 2nd and 4th fail
// their first k-mer count.
func testOptions() options {
	return options{samples: 4, reads: 1500, k: 21, seed: 7, flaky: 2, data: "seqdata", runDir: "runinfo"}
}

// TestWorkflowAndResume runs the workflow three times in one directory.
// The first run computes everything (retrying the flaky k-mer counts) and
// its summary must match statistics the test computes from the FASTA
// files itself; the second and third runs must reuse every per-sample
// result from the previous run's checkpoint, leaving the files untouched
// and the summary the same.
func TestWorkflowAndResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Chdir(t.TempDir())
	o := testOptions()
	dataset := filepath.Join("seqdata", "seed7-reads1500")

	out := runOnce(ctx, t, o)
	mustContain(t, out, "tasks: 21 run, 0 reused from the checkpoint (no earlier checkpoint), 0 failed\n")
	mustContain(t, out, "retried tries: 2 (Config.Retries = 2)\n")
	mustContain(t, out, "(seq.kmers) try 1: bash app task")
	first, err := os.ReadFile(filepath.Join(dataset, "summary.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, string(first), dataset, o)
	if m, _ := filepath.Glob(filepath.Join(dataset, "kmers", "*.first-try")); len(m) != 0 {
		t.Errorf("retry markers left behind: %v", m)
	}
	before := mtimes(t, dataset)

	// A rerun that computes nothing new writes no journal of its own
	// (checkpoints of reruns reference the ones they loaded), so the
	// newest checkpoint stays run 000's.
	for run, prev := range []string{"runinfo/000/checkpoint", "runinfo/000/checkpoint"} {
		out := runOnce(ctx, t, o)
		// Only the summary, which is not cached, runs again.
		mustContain(t, out, fmt.Sprintf("tasks: 1 run, 20 reused from the checkpoint (%s), 0 failed\n", filepath.FromSlash(prev)))
		mustContain(t, out, "retried tries: 0 (")
		again, err := os.ReadFile(filepath.Join(dataset, "summary.tsv"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, first) {
			t.Errorf("run %d: summary differs from the first run's:\n%s\nfirst:\n%s", run+2, again, first)
		}
		if after := mtimes(t, dataset); !equalMaps(before, after) {
			t.Errorf("run %d rewrote per-sample files: before %v, after %v", run+2, before, after)
		}
	}
}

// TestHtexMatchesThreads runs the workflow on worker pools (copies of this
// test binary, which get nothing from the driver but app arguments) and
// checks that the summary is the one the threads executor writes.
func TestHtexMatchesThreads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	config, err := filepath.Abs(filepath.Join("..", "configs", "htex-local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.samples = 2
	summaryFile := filepath.Join("seqdata", "seed7-reads1500", "summary.tsv")

	t.Chdir(t.TempDir())
	runOnce(ctx, t, o)
	threads, err := os.ReadFile(summaryFile)
	if err != nil {
		t.Fatal(err)
	}

	t.Chdir(t.TempDir())
	t.Setenv(parsl.ConfigEnv, config)
	out := runOnce(ctx, t, o)
	mustContain(t, out, "tasks: 11 run, 0 reused")
	mustContain(t, out, "retried tries: 1 (")
	htex, err := os.ReadFile(summaryFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(htex, threads) {
		t.Errorf("htex summary:\n%s\nthreads summary:\n%s", htex, threads)
	}
}

func runOnce(ctx context.Context, t *testing.T, o options) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(ctx, &out, o); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	return out.String()
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("output lacks %q:\n%s", sub, s)
	}
}

// checkSummary compares summary.tsv with what the test computes from the
// reads directly, in Go, without awk, sort or the workflow's analysis code.
func checkSummary(t *testing.T, summary, dataset string, o options) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(summary, "\n"), "\n")
	if len(lines) != o.samples+1 {
		t.Fatalf("summary has %d lines, want a header and %d samples:\n%s", len(lines), o.samples, summary)
	}
	col := map[string]int{}
	for i, name := range strings.Split(lines[0], "\t") {
		col[name] = i
	}
	for i, line := range lines[1:] {
		row := strings.Split(line, "\t")
		name := fmt.Sprintf("S%03d", i+1)
		if row[col["sample"]] != name {
			t.Errorf("row %d is sample %q, want %q", i+1, row[col["sample"]], name)
			continue
		}
		want := fastaStats(t, filepath.Join(dataset, "reads", name+".fa"), o.k)
		for key, w := range want {
			if got := row[col[key]]; got != w {
				t.Errorf("%s %s = %s, want %s (computed from the FASTA)", name, key, got, w)
			}
		}
		if want["reads"] != strconv.Itoa(o.reads) {
			t.Errorf("%s has %s reads, want %d", name, want["reads"], o.reads)
		}
		// At about 15x coverage nearly every genomic k-mer is seen
		// more often than the errors: the estimate is within 5%.
		est, err1 := strconv.Atoi(row[col["genome_est"]])
		truth, err2 := strconv.Atoi(row[col["genome_true"]])
		if err1 != nil || err2 != nil || est < truth*95/100 || est > truth*105/100 {
			t.Errorf("%s genome_est %s, genome_true %s: want within 5%%", name, row[col["genome_est"]], row[col["genome_true"]])
		}
	}
}

// fastaStats returns summary columns computed from a FASTA file.
func fastaStats(t *testing.T, path string, k int) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seqs []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), ">") {
			if len(seqs) > 0 || cur.Len() > 0 {
				seqs = append(seqs, cur.String())
			}
			cur.Reset()
			continue
		}
		cur.WriteString(strings.ToUpper(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	seqs = append(seqs, cur.String())
	bases, gc, total := 0, 0, 0
	kmers := map[string]int{}
	for _, s := range seqs {
		bases += len(s)
		gc += strings.Count(s, "G") + strings.Count(s, "C")
		for i := 0; i+k <= len(s); i++ {
			kmers[s[i:i+k]]++
			total++
		}
	}
	singletons := 0
	for _, n := range kmers {
		if n == 1 {
			singletons++
		}
	}
	return map[string]string{
		"reads":      strconv.Itoa(len(seqs)),
		"bases":      strconv.Itoa(bases),
		"gc_pct":     fmt.Sprintf("%.2f", 100*float64(gc)/float64(bases)),
		"kmers":      strconv.Itoa(total),
		"distinct":   strconv.Itoa(len(kmers)),
		"singletons": strconv.Itoa(singletons),
	}
}

// mtimes returns the modification time of every per-sample file.
func mtimes(t *testing.T, dataset string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	for _, dir := range []string{"reads", "gc", "kmers", "spectra"} {
		err := filepath.WalkDir(filepath.Join(dataset, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			m[p] = info.ModTime()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(m) == 0 {
		t.Fatalf("no per-sample files under %s", dataset)
	}
	return m
}

func equalMaps(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.Equal(v) {
			return false
		}
	}
	return true
}
