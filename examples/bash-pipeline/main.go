// Command bash-pipeline chains bash apps and a Go app through files: a bash
// app writes numbers, another sorts them, a Go app sums the sorted file.
// Each bash app's command line is built on the driver once its inputs are
// ready; parsl.Outputs makes a missing file an error, not a silent gap.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"

	"github.com/parsl-go/parsl"
)

var (
	// Generate writes n pseudo-random numbers, one per line.
	Generate = parsl.RegisterBash2("pipeline.generate", func(ctx context.Context, n int, out parsl.File) (string, error) {
		return fmt.Sprintf("for i in $(seq 1 %d); do echo $(( (i * 7919) %% 1000 )); done > %q", n, out.Path()), nil
	})
	// Sort sorts a file numerically. It takes the upstream exit code as an
	// argument so that it runs after Generate.
	Sort = parsl.RegisterBash3("pipeline.sort", func(ctx context.Context, _ int, in, out parsl.File) (string, error) {
		return fmt.Sprintf("sort -n %q > %q", in.Path(), out.Path()), nil
	})
	// SumFile adds the numbers in a file.
	SumFile = parsl.Register2("pipeline.sum", func(ctx context.Context, _ int, in parsl.File) (int, error) {
		f, err := os.Open(in.Path())
		if err != nil {
			return 0, err
		}
		defer f.Close()
		sum := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			v, err := strconv.Atoi(sc.Text())
			if err != nil {
				return 0, fmt.Errorf("%s: %w", in.Path(), err)
			}
			sum += v
		}
		return sum, sc.Err()
	})
)

func main() {
	parsl.Main()
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// run is the workflow, apart from main so that its deferred Close runs
// before log.Fatal (which skips deferred calls).
func run(ctx context.Context) (err error) {
	dfk, err := parsl.Load(ctx, parsl.Config{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dfk.Close(ctx)) }()

	dir := filepath.Join(dfk.RunDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw := parsl.NewFile(filepath.Join(dir, "numbers.txt"))
	sorted := parsl.NewFile(filepath.Join(dir, "sorted.txt"))

	gen := Generate.Submit(dfk, parsl.Val(1000), parsl.Val(raw), parsl.Outputs(raw),
		parsl.Stderr(filepath.Join(dir, "generate.err")))
	srt := Sort.Submit(dfk, gen, parsl.Val(raw), parsl.Val(sorted), parsl.Outputs(sorted))
	sum := SumFile.Submit(dfk, srt, parsl.Val(sorted))

	v, err := sum.Get(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("sum of %s = %d\n", sorted.Path(), v)
	return nil
}
