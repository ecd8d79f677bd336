// Command data-pipeline moves data through a workflow: it stages input
// documents in from an HTTP server, turns each into a sorted word list
// with a bash app, counts the words with a Go app, merges the counts into
// a report with another Go app, and stages the counts and the report out
// to a destination directory.
//
// The files are the edges of the graph: each app's outputs are futures
// (Future.Outputs) passed to the next app, and the report takes all the
// counts at once through parsl.Inputs. The HTTP server runs inside the
// program, on a loopback port, so the example needs no network.
//
//	go run ./examples/data-pipeline                      # results in runinfo/NNN/results
//	go run ./examples/data-pipeline -dest /tmp/results   # or any directory
//	go run ./examples/data-pipeline -dest rsync://host/module/results
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parsl-go/parsl"
)

// documents are served by the in-process HTTP server under /docs/.
var documents = map[string]string{
	"rivers.txt": "The river runs to the sea, and the sea does not fill. " +
		"The river returns to the place it came from, and runs again.",
	"stars.txt": "Stars are suns, far away. Some stars are older than the sun, " +
		"and some stars are gone while their light still runs to us.",
	"trees.txt": "A tree grows toward the sun. The roots of the tree run deep, " +
		"and the tree drinks the rain the river brings.",
}

var (
	// Words writes the words of a document, lower case, one per line,
	// sorted: a bash app, so the command line is built here and run by
	// /bin/bash wherever the task lands.
	Words = parsl.RegisterBash2("datapipeline.words", func(ctx context.Context, doc, out parsl.File) (string, error) {
		return fmt.Sprintf("tr -cs 'A-Za-z' '\\n' < %q | tr A-Z a-z | grep -v '^$' | sort > %q", doc.Path(), out.Path()), nil
	})
	// Count reads a sorted word list and writes "count word" lines, most
	// frequent first. It returns the number of words.
	Count = parsl.Register2("datapipeline.count", func(ctx context.Context, words, out parsl.File) (int, error) {
		counts, total, err := countWords(words.Path())
		if err != nil {
			return 0, err
		}
		var b strings.Builder
		for _, wc := range counts {
			fmt.Fprintf(&b, "%d %s\n", wc.n, wc.word)
		}
		return total, writeFile(out, b.String())
	})
	// Report merges count files into one table of the words found in
	// more than one document, and returns a one-line summary.
	Report = parsl.Register2("datapipeline.report", func(ctx context.Context, counts []parsl.File, out parsl.File) (string, error) {
		total := map[string]int{}
		docs := map[string]int{}
		for _, f := range counts {
			m, err := readCounts(f.Path())
			if err != nil {
				return "", err
			}
			for w, n := range m {
				total[w] += n
				docs[w]++
			}
		}
		var shared []wordCount
		for w, n := range total {
			if docs[w] > 1 {
				shared = append(shared, wordCount{w, n})
			}
		}
		sortCounts(shared)
		var b strings.Builder
		fmt.Fprintf(&b, "words found in more than one of %d documents\n", len(counts))
		for _, wc := range shared {
			fmt.Fprintf(&b, "%-8s %3d in %d\n", wc.word, wc.n, docs[wc.word])
		}
		if err := writeFile(out, b.String()); err != nil {
			return "", err
		}
		top := "none"
		if len(shared) > 0 {
			top = fmt.Sprintf("%q (%d times)", shared[0].word, shared[0].n)
		}
		return fmt.Sprintf("%d distinct words, %d shared; most common shared word %s", len(total), len(shared), top), nil
	})
)

func main() {
	parsl.Main()
	dest := flag.String("dest", "", "where results are staged out to: a directory or a URL such as rsync://host/module/dir (default: the run directory's results/)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *dest); err != nil {
		log.Fatal(err)
	}
}

// run is the whole workflow; main_test.go calls it too.
func run(ctx context.Context, w io.Writer, dest string) (err error) {
	base, stop, err := serveDocuments()
	if err != nil {
		return err
	}
	defer stop()

	dfk, err := parsl.Load(ctx, parsl.Config{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dfk.Close(ctx)) }()

	if dest == "" {
		dest = filepath.Join(dfk.RunDir(), "results")
	}
	destURL, err := destination(dest)
	if err != nil {
		return err
	}
	// Intermediate files stay local, in the run directory.
	work, err := filepath.Abs(filepath.Join(dfk.RunDir(), "work"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}

	names := make([]string, 0, len(documents))
	for name := range documents {
		names = append(names, name)
	}
	sort.Strings(names)

	var (
		counted  []parsl.Arg[parsl.File]
		totals   []*parsl.Future[int]
		outFiles []parsl.File
	)
	for _, name := range names {
		stem := strings.TrimSuffix(name, ".txt")
		// An https or http URL as an argument: a parsl.stage_in task
		// downloads it first, and the app gets the local copy.
		doc := parsl.NewFile(base + "/docs/" + name)
		words := parsl.NewFile(filepath.Join(work, stem+".words"))
		wf := Words.Submit(dfk, doc, words, parsl.Outputs(words))
		// A URL output: Count writes locally, and a parsl.stage_out task
		// copies the file to the destination once Count succeeds.
		counts := parsl.NewFile(destURL + "counts/" + stem + ".txt")
		cf := Count.Submit(dfk, wf.Outputs()[0], counts, parsl.Outputs(counts))
		counted = append(counted, cf.Outputs()[0])
		totals = append(totals, cf)
		outFiles = append(outFiles, counts)
	}
	report := parsl.NewFile(destURL + "report.txt")
	rf := Report.Submit(dfk, parsl.Inputs(counted...), report, parsl.Outputs(report))
	outFiles = append(outFiles, report)

	summary, err := rf.Get(ctx)
	if err != nil {
		return err
	}
	// The report's output future completes once it is at the destination.
	if _, err := rf.Outputs()[0].Get(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "staged in %d documents from %s/docs/\n", len(names), base)
	for i, name := range names {
		n, err := totals[i].Get(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-10s %3d words\n", name, n)
	}
	fmt.Fprintf(w, "report: %s\n", summary)
	fmt.Fprintf(w, "results staged out to %s:\n", destURL)
	for _, f := range outFiles {
		fmt.Fprintf(w, "  %s\n", f.URL)
	}
	return nil
}

// destination turns -dest into a URL prefix ending in "/": a directory
// becomes a file:// URL.
func destination(dest string) (string, error) {
	if !strings.Contains(dest, "://") {
		abs, err := filepath.Abs(dest)
		if err != nil {
			return "", err
		}
		dest = "file://" + abs
	}
	return strings.TrimSuffix(dest, "/") + "/", nil
}

// serveDocuments starts an HTTP server on a loopback port and returns its
// base URL and a function that stops it.
func serveDocuments() (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /docs/{name}", func(w http.ResponseWriter, r *http.Request) {
		body, ok := documents[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("starting the document server: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	stop := func() {
		srv.Close()
		<-done
	}
	return "http://" + l.Addr().String(), stop, nil
}

// writeFile writes an app's output. The directory is made here because a
// file:// output is written in place when the DFK does not stage it out.
func writeFile(f parsl.File, text string) error {
	if err := os.MkdirAll(filepath.Dir(f.Path()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(f.Path(), []byte(text), 0o644)
}

type wordCount struct {
	word string
	n    int
}

// sortCounts orders by count, most frequent first, then by word.
func sortCounts(wcs []wordCount) {
	sort.Slice(wcs, func(i, j int) bool {
		if wcs[i].n != wcs[j].n {
			return wcs[i].n > wcs[j].n
		}
		return wcs[i].word < wcs[j].word
	})
}

// countWords counts the lines of a word list.
func countWords(path string) ([]wordCount, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	m := map[string]int{}
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if w := sc.Text(); w != "" {
			m[w]++
			total++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	wcs := make([]wordCount, 0, len(m))
	for w, n := range m {
		wcs = append(wcs, wordCount{w, n})
	}
	sortCounts(wcs)
	return wcs, total, nil
}

// readCounts reads "count word" lines.
func readCounts(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		ns, w, ok := strings.Cut(line, " ")
		n, err := strconv.Atoi(ns)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s:%d: want \"count word\", got %q", path, i+1, line)
		}
		m[w] += n
	}
	return m, nil
}
