// Command sequence-analysis is a read quality-control workflow over many
// sequencing samples, the first thing a genomics lab runs on a new batch:
// per sample, the read count, read length (mean and N50), GC content and
// k-mer spectrum, from which the genome's size and the sequencing depth
// are estimated as k-mer tools such as Jellyfish and GenomeScope do (solid
// k-mers, the spectrum's peak); then one table for the whole batch.
//
// Map it to your own data by replacing Simulate with the step that lists
// your FASTA or FASTQ files (one per sample or per lane), and the bash apps
// with the tools you already run per file (seqkit, jellyfish, fastp…): a
// bash app is a command line built from its arguments. The workflow
// generates its own data, so it needs no download and no tool beyond awk,
// sort, uniq and gzip. Its files go to seqdata/seed1-reads1500/:
//
//	Simulate    Go    a random genome per sample, and reads sampled from it
//	                  with sequencing errors, as FASTA (reads/S001.fa)
//	GCContent   bash  awk: length and G+C count of every read (gc/S001.tsv)
//	KmerCount   bash  awk | sort | uniq -c | gzip: every k-mer's count
//	                  (kmers/S001.k21.tsv.gz); every 4th sample fails its
//	                  first try, a stand-in for a busy file server, and is
//	                  retried (Config.Retries)
//	ReadStats   Go    reads, bases, mean length, N50, GC% of one sample
//	Spectrum    Go    k-mer spectrum (spectra/S001.k21.tsv), its peak (the
//	                  k-mer depth), the genome size
//	Summary     Go    the fan-in: one row per sample (summary.tsv)
//
// The per-sample steps are cached (WithCache) and checkpointed
// (CheckpointTaskExit): run it again and each finished step is reused from
// the newest checkpoint (LastCheckpoint), so only the summary runs; the
// program says how many tasks it reused. With more samples (-samples 24)
// only the new ones are computed; -fresh runs everything again. A cached
// result is keyed by the app's name, version (WithVersion) and arguments,
// a File by its path and not its content: bump the version when an app's
// code changes, and give files of different data different paths (hence
// the directory named after the seed).
//
//	go run ./examples/sequence-analysis                      # threads on this machine
//	go run ./examples/sequence-analysis                      # again: everything reused
//	go run ./examples/sequence-analysis -monitor             # then: go run ./cmd/parsl visualize
//	go run ./examples/sequence-analysis -fresh -dashboard 127.0.0.1:8080
//	PARSL_CONFIG=examples/configs/htex-local.yaml go run ./examples/sequence-analysis
//
// Every value an app needs travels in its arguments (the Sample struct,
// k, the file paths): worker pools run this same binary but never run
// main, so a flag or global set in main would not reach them. Files are
// named by absolute paths, which assumes a file system that the workers
// share with the driver, as a cluster's home or scratch is.
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/parsl-go/parsl"
)

// Sample describes one simulated sequencing sample: what Simulate needs to
// write its reads, and the truth the summary compares estimates with.
type Sample struct {
	Name      string
	Seed      uint64
	GenomeLen int     // bases in the sample's genome
	GC        float64 // G+C fraction of the genome
	Reads     int
	MinLen    int     // read lengths are uniform in [MinLen, MaxLen]
	MaxLen    int     //
	ErrorRate float64 // chance that a base of a read is miscalled
}

// ReadStats is what ReadStats measures in one sample's reads.
type ReadStats struct {
	Sample  string
	Reads   int
	Bases   int
	MeanLen float64
	N50     int     // half the bases are in reads at least this long
	GC      float64 // G+C fraction over all bases
}

// KmerStats summarises one sample's k-mer spectrum.
type KmerStats struct {
	K          int
	Total      int // k-mers counted, with multiplicity
	Distinct   int
	Singletons int // distinct k-mers seen once: mostly sequencing errors
	// Valley is the first minimum of the spectrum: k-mers seen fewer
	// times are taken for errors.
	Valley int
	// Peak is the depth with the most distinct k-mers beyond the valley,
	// refined between depths by a parabola through it and its neighbours:
	// the k-mer coverage of the genome.
	Peak float64
	// GenomeSize is the number of distinct solid k-mers (depth ≥ Valley)
	// plus k-1: the length of a sequence that has that many k-mers. It is
	// the k-mer estimate of a genome's size; dividing the solid k-mers
	// with multiplicity by Peak, as GenomeScope's first approximation
	// does, is no better at these small genomes, whose spectra are
	// lumpy.
	GenomeSize int
}

var (
	// Simulate writes a sample's reads as FASTA: a random genome with the
	// sample's GC content, reads taken from it at random places, and each
	// base miscalled with the sample's error rate. The seed makes every
	// run write the same bytes.
	Simulate = parsl.Register2("seq.simulate", func(ctx context.Context, s Sample, out parsl.File) (int, error) {
		return simulate(s, out.Path())
	}, parsl.WithCache(true), parsl.WithVersion("1"))

	// GCContent writes "read, length, gc" for every read, with awk.
	// Sequences may span several lines, as FASTA allows.
	GCContent = parsl.RegisterBash2("seq.gc", func(ctx context.Context, reads, out parsl.File) (string, error) {
		return "set -euo pipefail; awk '" + gcProgram + "' " + sh(reads.Path()) + " > " + sh(out.Path()), nil
	}, parsl.WithCache(true), parsl.WithVersion("1"))

	// KmerCount writes "kmer<TAB>count" for every k-mer of every read,
	// sorted, gzipped: the classic k-mer count with Unix tools. With flaky
	// set, its first try fails (exit 75, EX_TEMPFAIL) and the retry
	// succeeds, as a step does when a file server is briefly unavailable;
	// a marker file next to the output remembers the first try.
	KmerCount = parsl.RegisterBash4("seq.kmers", func(ctx context.Context, k int, flaky bool, reads, out parsl.File) (string, error) {
		if k < 1 || k > 64 {
			return "", fmt.Errorf("k must be between 1 and 64, got %d", k)
		}
		cmd := "set -euo pipefail; "
		if flaky {
			m := sh(out.Path() + ".first-try")
			cmd += fmt.Sprintf("if [ ! -e %s ]; then : > %s; echo 'kmers: file server busy, try again later (simulated)' >&2; exit 75; fi; rm -f %s; ", m, m, m)
		}
		cmd += fmt.Sprintf("awk -v k=%d '%s' %s | LC_ALL=C sort | uniq -c | awk '{ print $2 \"\\t\" $1 }' | gzip -n > %s",
			k, kmerProgram, sh(reads.Path()), sh(out.Path()))
		return cmd, nil
	}, parsl.WithCache(true), parsl.WithVersion("1"))

	// ReadStats reads GCContent's table.
	ReadStatsApp = parsl.Register2("seq.readstats", func(ctx context.Context, sample string, table parsl.File) (ReadStats, error) {
		return readStats(sample, table.Path())
	}, parsl.WithCache(true), parsl.WithVersion("1"))

	// Spectrum turns k-mer counts into a spectrum (depth, distinct k-mers
	// seen that often), writes it, and estimates the genome size from it.
	Spectrum = parsl.Register3("seq.spectrum", func(ctx context.Context, k int, counts, out parsl.File) (KmerStats, error) {
		return spectrum(k, counts.Path(), out.Path())
	}, parsl.WithCache(true), parsl.WithVersion("1"))

	// Summary is the fan-in: one TSV row per sample. It is not cached, so
	// the table is written on every run, also when every input is reused.
	Summary = parsl.Register4("seq.summary", func(ctx context.Context, samples []Sample, reads []ReadStats, kmers []KmerStats, out parsl.File) (string, error) {
		return summary(samples, reads, kmers, out.Path())
	})
)

// gcProgram is the awk program of GCContent: POSIX awk, so that it runs
// with mawk, gawk and the BSD awk of macOS alike.
const gcProgram = `BEGIN { OFS = "\t"; print "read", "length", "gc" }
/^>/ { if (id != "") print id, n, gc; id = substr($1, 2); n = 0; gc = 0; next }
{ s = toupper($0); n += length(s); gc += gsub(/[GC]/, "", s) }
END { if (id != "") print id, n, gc }`

// kmerProgram is the awk program of KmerCount: it joins each record's
// lines and prints its k-mers, skipping those with bases other than ACGT.
const kmerProgram = `function emit(   i, m) { for (i = 1; i + k - 1 <= length(s); i++) { m = substr(s, i, k); if (m !~ /[^ACGT]/) print m } }
/^>/ { emit(); s = ""; next }
{ s = s toupper($0) }
END { emit() }`

// options are the command line's settings.
type options struct {
	samples, reads, k int
	seed              uint64
	flaky             int // every flaky-th sample's KmerCount fails its first try; 0: none
	data, runDir      string
	fresh             bool
	monitor           bool
	dashboard         string
}

func main() {
	parsl.Main()
	var o options
	flag.IntVar(&o.samples, "samples", 16, "number of samples")
	flag.IntVar(&o.reads, "reads", 1500, "reads per sample")
	flag.IntVar(&o.k, "k", 21, "k-mer length")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the simulated data")
	flag.IntVar(&o.flaky, "flaky", 4, "the k-mer count of every n-th sample fails its first try and is retried (0: none)")
	flag.StringVar(&o.data, "data", "seqdata", "directory for the data sets: reads, per-sample results and summary.tsv")
	flag.StringVar(&o.runDir, "rundir", "runinfo", "base of the numbered run directories (logs, checkpoints)")
	flag.BoolVar(&o.fresh, "fresh", false, "ignore earlier checkpoints and run every task")
	flag.BoolVar(&o.monitor, "monitor", false, "record the run in <rundir>/monitoring.db (see it with: go run ./cmd/parsl visualize)")
	flag.StringVar(&o.dashboard, "dashboard", "", "serve the live dashboard at this address while the run lasts, e.g. 127.0.0.1:8080 (implies -monitor)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, o); err != nil {
		log.Fatal(err)
	}
}

// run is the workflow, apart from main so that its deferred Close runs
// before log.Fatal (which skips deferred calls): a failed run still writes
// its checkpoint and is marked ended in the monitoring database.
// main_test.go calls it too.
func run(ctx context.Context, w io.Writer, o options) (err error) {
	start := time.Now()
	if o.samples < 1 || o.reads < 1 {
		return fmt.Errorf("-samples and -reads must be at least 1, got %d and %d", o.samples, o.reads)
	}
	// A cached task is keyed by its arguments, and a File argument by its
	// path, not its content. So each data set has a directory of its own:
	// a run with another seed writes new files rather than overwriting
	// ones whose downstream results are cached under the same paths.
	data, err := filepath.Abs(filepath.Join(o.data, fmt.Sprintf("seed%d-reads%d", o.seed, o.reads)))
	if err != nil {
		return err
	}
	for _, d := range []string{"reads", "gc", "kmers", "spectra"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			return err
		}
	}

	// Resume from the newest checkpoint: each run's checkpoint holds every
	// result it computed or reused, so the newest one is enough.
	ckpt := []string{} // empty, not nil: nil would load every checkpoint
	if !o.fresh {
		last, err := parsl.LastCheckpoint(o.runDir)
		if err != nil {
			return err
		}
		ckpt = append(ckpt, last...)
	}

	// The retry handler runs on the driver, so it may keep state for main.
	var (
		mu      sync.Mutex
		retried []string
	)
	cfg := parsl.Config{
		RunDir:          o.runDir,
		Retries:         2,
		CheckpointMode:  parsl.CheckpointTaskExit,
		CheckpointFiles: ckpt,
		Progress:        true,
		RetryHandler: func(err error, t parsl.TaskInfo) float64 {
			mu.Lock()
			defer mu.Unlock()
			retried = append(retried, fmt.Sprintf("task %d (%s) try %d: %v", t.ID, t.App, t.Try+1, err))
			return 1
		},
	}
	if o.monitor || o.dashboard != "" {
		cfg.Monitoring = &parsl.MonitoringConfig{WorkflowName: "sequence-analysis", DashboardAddr: o.dashboard}
	}
	dfk, err := parsl.Load(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dfk.Close(ctx)) }()
	if u := dfk.DashboardURL(); u != "" {
		fmt.Fprintln(w, "live dashboard:", u)
	}
	// Each bash task's stderr goes to the run's logs, to read when one fails.
	logs := filepath.Join(dfk.RunDir(), "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}

	samples := makeSamples(o)
	var (
		reads []parsl.Arg[ReadStats]
		kmers []parsl.Arg[KmerStats]
	)
	for i, s := range samples {
		fa := parsl.NewFile(filepath.Join(data, "reads", s.Name+".fa"))
		sim := Simulate.Submit(dfk, parsl.Val(s), fa, parsl.Outputs(fa))

		gc := parsl.NewFile(filepath.Join(data, "gc", s.Name+".tsv"))
		gcf := GCContent.Submit(dfk, sim.Outputs()[0], gc, parsl.Outputs(gc),
			parsl.Stderr(filepath.Join(logs, s.Name+".gc.err")))
		reads = append(reads, ReadStatsApp.Submit(dfk, parsl.Val(s.Name), gcf.Outputs()[0]))

		counts := parsl.NewFile(filepath.Join(data, "kmers", fmt.Sprintf("%s.k%d.tsv.gz", s.Name, o.k)))
		flaky := o.flaky > 0 && i%o.flaky == o.flaky-1
		kc := KmerCount.Submit(dfk, parsl.Val(o.k), parsl.Val(flaky), sim.Outputs()[0], counts, parsl.Outputs(counts),
			parsl.Stderr(filepath.Join(logs, s.Name+".kmers.err")))
		spec := parsl.NewFile(filepath.Join(data, "spectra", fmt.Sprintf("%s.k%d.tsv", s.Name, o.k)))
		kmers = append(kmers, Spectrum.Submit(dfk, parsl.Val(o.k), kc.Outputs()[0], spec, parsl.Outputs(spec)))
	}
	table := parsl.NewFile(filepath.Join(data, "summary.tsv"))
	sum := Summary.Submit(dfk, parsl.Val(samples), parsl.All(reads...), parsl.All(kmers...), table, parsl.Outputs(table))
	text, err := sum.Get(ctx)
	if err != nil {
		return err
	}
	if err := dfk.Wait(ctx); err != nil { // so that Counts has every task
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, strings.ReplaceAll(text, "\n", "\t\n"))
	if err := tw.Flush(); err != nil {
		return err
	}
	c := dfk.Counts()
	fmt.Fprintf(w, "summary: %s\n", table.Path())
	from := "no earlier checkpoint"
	if len(ckpt) > 0 {
		from = ckpt[0]
	}
	fmt.Fprintf(w, "tasks: %d run, %d reused from the checkpoint (%s), %d failed\n",
		c[parsl.StateExecDone], c[parsl.StateMemoDone], from, c[parsl.StateFailed]+c[parsl.StateDepFail])
	mu.Lock()
	fmt.Fprintf(w, "retried tries: %d (Config.Retries = %d)\n", len(retried), cfg.Retries)
	slices.Sort(retried)
	for _, r := range retried {
		fmt.Fprintf(w, "  %s\n", r)
	}
	mu.Unlock()
	fmt.Fprintf(w, "run directory: %s, in %s\n", dfk.RunDir(), time.Since(start).Round(time.Millisecond))
	return nil
}

// makeSamples derives every sample from the seed: genome length and GC
// content differ between samples, so that the table has something to show.
// Sample i is the same whatever the number of samples, so that adding
// samples leaves the cached results of the others valid.
func makeSamples(o options) []Sample {
	r := rand.New(rand.NewPCG(o.seed, 0x5eed))
	samples := make([]Sample, o.samples)
	for i := range samples {
		samples[i] = Sample{
			Name:      fmt.Sprintf("S%03d", i+1),
			Seed:      r.Uint64(),
			GenomeLen: 6000 + r.IntN(6001),
			GC:        0.30 + 0.40*r.Float64(),
			Reads:     o.reads,
			MinLen:    80,
			MaxLen:    150,
			ErrorRate: 0.005,
		}
	}
	return samples
}

// simulate writes s's reads to path and returns how many it wrote.
func simulate(s Sample, path string) (int, error) {
	if s.MinLen < 1 || s.MaxLen < s.MinLen || s.GenomeLen < s.MaxLen {
		return 0, fmt.Errorf("sample %s: need 1 ≤ MinLen ≤ MaxLen ≤ GenomeLen, got %d, %d, %d", s.Name, s.MinLen, s.MaxLen, s.GenomeLen)
	}
	r := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	genome := make([]byte, s.GenomeLen)
	for i := range genome {
		if r.Float64() < s.GC {
			genome[i] = "GC"[r.IntN(2)]
		} else {
			genome[i] = "AT"[r.IntN(2)]
		}
	}
	// Write to a temporary name and rename, so that a killed task never
	// leaves a truncated FASTA that looks finished.
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp) // after a successful rename, a no-op
	bw := bufio.NewWriter(f)
	read := make([]byte, 0, s.MaxLen)
	for n := 0; n < s.Reads; n++ {
		l := s.MinLen + r.IntN(s.MaxLen-s.MinLen+1)
		pos := r.IntN(s.GenomeLen - l + 1)
		read = append(read[:0], genome[pos:pos+l]...)
		for i := range read {
			if r.Float64() < s.ErrorRate {
				read[i] = wrongBase(read[i], r)
			}
		}
		fmt.Fprintf(bw, ">%s_%06d pos=%d len=%d\n%s\n", s.Name, n+1, pos+1, l, read)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return s.Reads, os.Rename(tmp, path)
}

// wrongBase returns one of the three bases other than b.
func wrongBase(b byte, r *rand.Rand) byte {
	for {
		if c := "ACGT"[r.IntN(4)]; c != b {
			return c
		}
	}
}

// readStats reads GCContent's "read, length, gc" table.
func readStats(sample, path string) (ReadStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ReadStats{}, err
	}
	defer f.Close()
	st := ReadStats{Sample: sample}
	var lens []int
	gc := 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			continue // the header
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 3 {
			return ReadStats{}, fmt.Errorf("%s:%d: want 3 tab-separated fields, got %q", path, line, sc.Text())
		}
		l, err1 := strconv.Atoi(fields[1])
		g, err2 := strconv.Atoi(fields[2])
		if err := errors.Join(err1, err2); err != nil {
			return ReadStats{}, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		lens = append(lens, l)
		st.Bases += l
		gc += g
	}
	if err := sc.Err(); err != nil {
		return ReadStats{}, fmt.Errorf("%s: %w", path, err)
	}
	st.Reads = len(lens)
	if st.Reads == 0 || st.Bases == 0 {
		return st, nil
	}
	st.MeanLen = float64(st.Bases) / float64(st.Reads)
	st.GC = float64(gc) / float64(st.Bases)
	slices.SortFunc(lens, func(a, b int) int { return b - a })
	acc := 0
	for _, l := range lens {
		if acc += l; 2*acc >= st.Bases {
			st.N50 = l
			break
		}
	}
	return st, nil
}

// spectrum reads KmerCount's gzipped "kmer<TAB>count" lines, writes the
// spectrum "depth<TAB>distinct k-mers" to out and estimates the genome.
func spectrum(k int, countsPath, out string) (KmerStats, error) {
	f, err := os.Open(countsPath)
	if err != nil {
		return KmerStats{}, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return KmerStats{}, fmt.Errorf("%s: %w", countsPath, err)
	}
	st := KmerStats{K: k}
	hist := map[int]int{}
	sc := bufio.NewScanner(zr)
	for line := 1; sc.Scan(); line++ {
		kmer, n, ok := strings.Cut(sc.Text(), "\t")
		c, err := strconv.Atoi(n)
		if !ok || err != nil || len(kmer) != k || c < 1 {
			return KmerStats{}, fmt.Errorf("%s:%d: want a %d-mer, a tab and a count, got %q", countsPath, line, k, sc.Text())
		}
		hist[c]++
		st.Total += c
		st.Distinct++
	}
	if err := sc.Err(); err != nil {
		return KmerStats{}, fmt.Errorf("%s: %w", countsPath, err)
	}
	st.Singletons = hist[1]
	depths := make([]int, 0, len(hist))
	for d := range hist {
		depths = append(depths, d)
	}
	slices.Sort(depths)
	maxDepth := 0
	if len(depths) > 0 {
		maxDepth = depths[len(depths)-1]
	}
	// The valley: the first depth whose count does not fall at the next
	// depth. Below it, error k-mers dominate.
	st.Valley = 1
	for st.Valley < maxDepth && hist[st.Valley+1] < hist[st.Valley] {
		st.Valley++
	}
	solid, mode := 0, 0
	for _, d := range depths {
		if d < st.Valley {
			continue
		}
		solid += hist[d]
		if mode == 0 || hist[d] > hist[mode] {
			mode = d
		}
	}
	if mode > 0 {
		st.Peak = float64(mode)
		l, c, r := float64(hist[mode-1]), float64(hist[mode]), float64(hist[mode+1])
		if mode > st.Valley && l-2*c+r < 0 {
			st.Peak += 0.5 * (l - r) / (l - 2*c + r)
		}
		st.GenomeSize = solid + k - 1
	}

	var b strings.Builder
	b.WriteString("depth\tkmers\n")
	for _, d := range depths {
		fmt.Fprintf(&b, "%d\t%d\n", d, hist[d])
	}
	return st, os.WriteFile(out, []byte(b.String()), 0o644)
}

// summaryHeader is the first line of summary.tsv.
const summaryHeader = "sample\treads\tbases\tmean_len\tn50\tgc_pct\tgc_true\tkmers\tdistinct\tsingletons\tpeak\tgenome_est\tgenome_true"

// summary writes the batch's table to out and returns it.
func summary(samples []Sample, reads []ReadStats, kmers []KmerStats, out string) (string, error) {
	if len(reads) != len(samples) || len(kmers) != len(samples) {
		return "", fmt.Errorf("summary: %d samples but %d read statistics and %d spectra", len(samples), len(reads), len(kmers))
	}
	var b strings.Builder
	b.WriteString(summaryHeader + "\n")
	for i, s := range samples {
		r, km := reads[i], kmers[i]
		fmt.Fprintf(&b, "%s\t%d\t%d\t%.1f\t%d\t%.2f\t%.2f\t%d\t%d\t%d\t%.1f\t%d\t%d\n",
			s.Name, r.Reads, r.Bases, r.MeanLen, r.N50, 100*r.GC, 100*s.GC,
			km.Total, km.Distinct, km.Singletons, km.Peak, km.GenomeSize, s.GenomeLen)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	return b.String(), os.Rename(tmp, out)
}

// sh quotes s for bash.
func sh(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
