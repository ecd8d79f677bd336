// Command montecarlo estimates π by fanning out many independent sampling
// tasks and fanning their counts back in with parsl.All.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"time"

	"github.com/parsl-go/parsl"
)

var (
	// Sample throws n darts at the unit square and counts those inside the
	// quarter circle. Each task has its own seed, so results are repeatable.
	Sample = parsl.Register2("montecarlo.sample", func(ctx context.Context, seed uint64, n int) (int, error) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		in := 0
		for i := 0; i < n; i++ {
			x, y := r.Float64(), r.Float64()
			if x*x+y*y <= 1 {
				in++
			}
		}
		return in, nil
	})
	// Sum adds the counts.
	Sum = parsl.Register1("montecarlo.sum", func(ctx context.Context, counts []int) (int, error) {
		s := 0
		for _, c := range counts {
			s += c
		}
		return s, nil
	})
)

func main() {
	parsl.Main()
	tasks := flag.Int("tasks", 1000, "number of sampling tasks")
	darts := flag.Int("darts", 100_000, "darts per task")
	monitor := flag.Bool("monitor", false, "record the run in runinfo/monitoring.db (see it with: go run ./cmd/parsl visualize)")
	dashboard := flag.String("dashboard", "", "serve the live dashboard at this address while the run lasts, e.g. 127.0.0.1:8080 (implies -monitor)")
	flag.Parse()
	if err := run(context.Background(), *tasks, *darts, *monitor, *dashboard); err != nil {
		log.Fatal(err)
	}
}

// run is the workflow, apart from main so that its deferred Close runs
// before log.Fatal (which skips deferred calls): a failed run still writes
// its checkpoint and is marked ended in the monitoring database.
func run(ctx context.Context, tasks, darts int, monitor bool, dashboard string) (err error) {
	start := time.Now()
	// Progress draws a bar on a terminal and stays silent otherwise.
	cfg := parsl.Config{Progress: true}
	if monitor || dashboard != "" {
		cfg.Monitoring = &parsl.MonitoringConfig{WorkflowName: "montecarlo", DashboardAddr: dashboard}
	}
	dfk, err := parsl.Load(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dfk.Close(ctx)) }()
	if u := dfk.DashboardURL(); u != "" {
		fmt.Println("live dashboard:", u)
	}

	samples := make([]parsl.Arg[int], tasks)
	for i := range samples {
		samples[i] = Sample.Submit(dfk, parsl.Val(uint64(i)), parsl.Val(darts))
	}
	total := Sum.Submit(dfk, parsl.All(samples...))
	in, err := total.Get(ctx)
	if err != nil {
		return err
	}
	pi := 4 * float64(in) / float64(tasks*darts)
	fmt.Printf("π ≈ %.6f (error %.2e) from %d tasks × %d darts in %s\n",
		pi, math.Abs(pi-math.Pi), tasks, darts, time.Since(start).Round(time.Millisecond))
	return nil
}
