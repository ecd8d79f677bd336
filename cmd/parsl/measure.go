package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
)

// The apps perf runs. Like parsl-perf's app, they take one argument and
// return 7; they are registered at package level so that every copy of the
// binary has them.
var (
	noopApp = parsl.Register1("parsl.perf.noop", func(_ context.Context, _ int) (int, error) {
		return 7, nil
	})
	cachedApp = parsl.Register1("parsl.perf.cached_noop", func(_ context.Context, _ int) (int, error) {
		return 7, nil
	}, parsl.WithCache(true))
)

// perfRun holds one "parsl perf" run.
type perfRun struct {
	ctx      context.Context
	base     string // base run directory
	opts     *perfOptions
	tasks    []int
	heapN    int
	newExec  func() (executor.Executor, error)
	progress progress
}

func (p *perfRun) load() (*parsl.DFK, executor.Executor, error) {
	ex, err := p.newExec()
	if err != nil {
		return nil, nil, err
	}
	dfk, err := parsl.Load(p.ctx, p.opts.config(ex, p.base))
	return dfk, ex, err
}

// poolPeakRSS returns the largest peak resident set (VmHWM) among the
// pool processes of an htex executor, read from /proc while they still
// run; 0 when unknown.
func poolPeakRSS(ex executor.Executor) int64 {
	h, ok := ex.(*htex.Executor)
	if !ok {
		return 0
	}
	var peak int64
	for _, id := range h.JobIDs() {
		b, err := os.ReadFile("/proc/" + id + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) == 2 && f[1] == "kB" {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						peak = max(peak, kb*1024)
					}
				}
			}
		}
	}
	return peak
}

func (p *perfRun) run() (*perfResult, error) {
	res := &perfResult{
		Executor: p.opts.executor,
		Threads:  p.opts.threads,
		Repeat:   p.opts.repeat,
		Tasks:    p.tasks,
		EndToEnd: map[string]spread{},
		Submit:   map[string]spread{},
		Machine:  readMachine(),
		Date:     now(),
	}

	// First, while the process is cold: Load to first result.
	p.progress.step("first result after Load")
	first, err := p.firstResult()
	if err != nil {
		return nil, err
	}
	res.FirstResultMs = round(float64(first)/float64(time.Millisecond), 3)

	dfk, ex, err := p.load()
	if err != nil {
		return nil, err
	}
	defer dfk.Close(context.Background())

	// Warm up with one unrecorded round of the largest count: it starts the
	// workers and maps the memory that the rounds will reuse, which
	// otherwise makes the first round alone much slower (page faults).
	p.progress.step(fmt.Sprintf("warm-up, %d tasks", slices.Max(p.tasks)))
	if _, _, err := throughput(p.ctx, dfk, slices.Max(p.tasks)); err != nil {
		return nil, err
	}
	for _, n := range p.tasks {
		var e2e, sub []float64
		for r := 0; r < p.opts.repeat; r++ {
			p.progress.step(fmt.Sprintf("throughput %d tasks, round %d/%d", n, r+1, p.opts.repeat))
			runtime.GC() // do not make this round pay for the last one's garbage
			submit, total, err := throughput(p.ctx, dfk, n)
			if err != nil {
				return nil, err
			}
			sub = append(sub, round(float64(n)/submit.Seconds(), 1))
			e2e = append(e2e, round(float64(n)/total.Seconds(), 1))
		}
		k := strconv.Itoa(n)
		res.EndToEnd[k], res.Submit[k] = spreadOf(e2e), spreadOf(sub)
	}

	p.progress.step("sequential latency")
	runtime.GC()
	lat, err := latency(p.ctx, dfk, p.opts.latencySamples)
	if err != nil {
		return nil, err
	}
	res.Latency = lat

	p.progress.step("memo hits")
	runtime.GC()
	per, err := memoHit(p.ctx, dfk, p.opts.latencySamples)
	if err != nil {
		return nil, err
	}
	res.MemoHitNs, res.MemoHits = round(float64(per), 1), p.opts.latencySamples

	p.progress.step(fmt.Sprintf("heap of %d blocked tasks", p.heapN))
	perTask, err := blockedHeap(p.ctx, dfk, p.heapN)
	if err != nil {
		return nil, err
	}
	res.HeapBytesPerTask, res.HeapTasks = round(perTask, 1), p.heapN

	res.PoolPeakRSSBytes = poolPeakRSS(ex)
	if p.opts.executor == "htex" {
		tls := !p.opts.noTLS
		res.TLS = &tls
	}
	closeStart := time.Now()
	if err := dfk.Close(p.ctx); err != nil {
		return nil, fmt.Errorf("closing the DFK: %w", err)
	}
	closeTime := time.Since(closeStart)
	res.PeakRSSBytes = peakRSS()
	if p.opts.monitoring != "" {
		if res.Monitoring, err = measureDB(p.ctx, p.opts.monitoring, closeTime); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// firstResult times parsl.Load on a fresh run directory up to the first
// task's result.
func (p *perfRun) firstResult() (time.Duration, error) {
	ex, err := p.newExec()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	dfk, err := parsl.Load(p.ctx, p.opts.config(ex, p.base))
	if err != nil {
		return 0, err
	}
	v, err := noopApp.Submit(dfk, parsl.Val(0)).Get(p.ctx)
	elapsed := time.Since(start)
	if cerr := dfk.Close(p.ctx); err == nil && cerr != nil {
		err = fmt.Errorf("closing the DFK: %w", cerr)
	}
	if err == nil {
		err = check(v)
	}
	return elapsed, err
}

func check(v int) error {
	if v != 7 {
		return fmt.Errorf("the no-op app returned %d, want 7", v)
	}
	return nil
}

// throughput submits n tasks, then gets every result. It returns the time
// of the submit loop and the time from the first submit to the last Get.
func throughput(ctx context.Context, dfk *parsl.DFK, n int) (submit, total time.Duration, err error) {
	fs := make([]*parsl.Future[int], n)
	start := time.Now()
	for i := range fs {
		fs[i] = noopApp.Submit(dfk, parsl.Val(i))
	}
	submitted := time.Now()
	for _, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			return 0, 0, err
		}
		if err := check(v); err != nil {
			return 0, 0, err
		}
	}
	end := time.Now()
	if err := dfk.Wait(ctx); err != nil {
		return 0, 0, err
	}
	return submitted.Sub(start), end.Sub(start), nil
}

// latency times n sequential round trips, each one task submitted and its
// result fetched before the next.
func latency(ctx context.Context, dfk *parsl.DFK, n int) (latencyResult, error) {
	one := func(i int) (time.Duration, error) {
		start := time.Now()
		v, err := noopApp.Submit(dfk, parsl.Val(i)).Get(ctx)
		d := time.Since(start)
		if err == nil {
			err = check(v)
		}
		return d, err
	}
	for i := 0; i < min(n, 1000); i++ { // warm up
		if _, err := one(i); err != nil {
			return latencyResult{}, err
		}
	}
	ds := make([]time.Duration, n)
	var sum time.Duration
	for i := range ds {
		d, err := one(i)
		if err != nil {
			return latencyResult{}, err
		}
		ds[i] = d
		sum += d
	}
	slices.Sort(ds)
	return latencyResult{
		P50:     round(micros(percentile(ds, 50)), 3),
		P90:     round(micros(percentile(ds, 90)), 3),
		P99:     round(micros(percentile(ds, 99)), 3),
		Min:     round(micros(ds[0]), 3),
		Max:     round(micros(ds[len(ds)-1]), 3),
		Mean:    round(micros(sum/time.Duration(n)), 3),
		Samples: n,
	}, nil
}

// memoHit returns the mean cost of a submit+Get of a cached app whose
// result is already in the cache.
func memoHit(ctx context.Context, dfk *parsl.DFK, n int) (time.Duration, error) {
	const arg = 42
	if v, err := cachedApp.Submit(dfk, parsl.Val(arg)).Get(ctx); err != nil {
		return 0, err
	} else if err := check(v); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		f := cachedApp.Submit(dfk, parsl.Val(arg))
		v, err := f.Get(ctx)
		if err != nil {
			return 0, err
		}
		if v != 7 || f.State() != parsl.StateMemoDone {
			return 0, fmt.Errorf("cached app: got %d in state %s, want 7 from the cache (state memo_done)", v, f.State())
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// blockedHeap submits n tasks that all wait on one unresolved promise and
// returns the heap growth per task, after a GC. The slice holding the
// futures is allocated before the baseline, so it is not counted: it is the
// caller's memory, not the kernel's. Then it resolves the promise and waits
// for every task.
func blockedHeap(ctx context.Context, dfk *parsl.DFK, n int) (float64, error) {
	fs := make([]*parsl.Future[int], n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)

	p := parsl.NewPromise[int]()
	for i := range fs {
		fs[i] = noopApp.Submit(dfk, p.Future())
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if waiting := dfk.Outstanding(); waiting < int64(n) {
		return 0, fmt.Errorf("only %d of %d tasks are waiting on the promise", waiting, n)
	}
	perTask := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)

	p.Resolve(1)
	for _, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			return 0, err
		}
		if err := check(v); err != nil {
			return 0, err
		}
	}
	if err := dfk.Wait(ctx); err != nil {
		return 0, err
	}
	return perTask, nil
}
