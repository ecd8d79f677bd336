package workerpool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/bash"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/internal/wire"
)

// Worker describes the worker a task runs on.
//
// Bash tasks see these values as Parsl's environment variables
// (PARSL_WORKER_RANK, PARSL_WORKER_COUNT, PARSL_WORKER_POOL_ID,
// PARSL_WORKER_BLOCK_ID, and CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES
// and ZE_AFFINITY_MASK for the pinned accelerator). Go apps run as
// goroutines of one process, which has a single environment, so setting
// per-worker variables there would race between workers; they get the same
// values from WorkerFromContext instead.
type Worker struct {
	// Rank is the worker's index in its pool, from 0.
	Rank int
	// Count is the number of workers in the pool.
	Count int
	// Accelerator is the device pinned to this worker ("" if none).
	Accelerator string
	// PoolID is the pool's (manager's) id; BlockID the block it runs in.
	PoolID, BlockID string
}

type workerKey struct{}

// WorkerFromContext returns the worker a Go app runs on, when it runs in a
// worker pool (false in the driver, for example on the threads executor).
func WorkerFromContext(ctx context.Context) (Worker, bool) {
	w, ok := ctx.Value(workerKey{}).(Worker)
	return w, ok
}

// workerCount is Parsl's rule: the configured maximum, bounded by the
// node's cores and memory and the number of accelerators, at least 1.
func workerCount(cfg wire.PoolConfig, cores, memMB float64) int {
	if cores <= 0 {
		cores = nodeCores()
	}
	n := cfg.Workers
	if n <= 0 {
		n = math.MaxInt
	}
	if cfg.CoresPerWorker > 0 {
		n = min(n, int(math.Floor(cores/cfg.CoresPerWorker)))
	}
	if cfg.MemPerWorkerMB > 0 {
		if memMB <= 0 {
			memMB = nodeMemoryMB()
		}
		if memMB > 0 {
			n = min(n, int(math.Floor(memMB/float64(cfg.MemPerWorkerMB))))
		}
	}
	if len(cfg.Accelerators) > 0 {
		n = min(n, len(cfg.Accelerators))
	}
	if n == math.MaxInt {
		// Nothing bounds it: one worker per core, as Parsl's default
		// cores_per_worker of 1 gives.
		n = int(cores)
	}
	return max(n, 1)
}

// nodeCores is $PARSL_CORES, else the CPUs this process may use.
func nodeCores() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("PARSL_CORES"), 64); err == nil && v > 0 {
		return v
	}
	return float64(runtime.NumCPU())
}

// nodeMemoryMB is $PARSL_MEMORY_GB, else MemAvailable from /proc/meminfo;
// 0 when unknown.
func nodeMemoryMB() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("PARSL_MEMORY_GB"), 64); err == nil && v > 0 {
		return v * 1024
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// makeWorkers builds the workers and their bash environments once, so no
// task pays for them.
func makeWorkers(n int, manager, block string, accels []string) ([]Worker, [][]string) {
	ws := make([]Worker, n)
	envs := make([][]string, n)
	for i := range ws {
		w := Worker{Rank: i, Count: n, PoolID: manager, BlockID: block}
		env := []string{
			"PARSL_WORKER_RANK=" + strconv.Itoa(i),
			"PARSL_WORKER_COUNT=" + strconv.Itoa(n),
			"PARSL_WORKER_POOL_ID=" + manager,
			"PARSL_WORKER_BLOCK_ID=" + block,
		}
		if len(accels) > 0 {
			w.Accelerator = accels[i%len(accels)]
			env = append(env,
				"CUDA_VISIBLE_DEVICES="+w.Accelerator,
				"ROCR_VISIBLE_DEVICES="+w.Accelerator,
				"ZE_AFFINITY_MASK="+w.Accelerator,
				"ZE_ENABLE_PCI_ID_DEVICE_ORDER=1")
		}
		ws[i], envs[i] = w, env
	}
	return ws, envs
}

// runTask runs one try and returns its result.
func (p *pool) runTask(ctx context.Context, worker int, t *wire.Task) wire.Result {
	r := wire.Result{ID: t.ID, Try: t.Try}
	var err error
	if t.Command != "" {
		err = p.runBash(ctx, worker, t)
	} else {
		r.Result, err = p.runGo(ctx, t)
	}
	if err != nil {
		r.Result = nil
		var ua *unknownAppError
		if errors.As(err, &ua) {
			r.Err = &wire.Error{Kind: wire.ErrUnknownApp, Message: ua.msg}
		} else {
			r.Err = wire.FromError(err)
		}
	}
	return r
}

func (p *pool) runGo(ctx context.Context, t *wire.Task) (codec.RawMessage, error) {
	if p.cfg.Generic {
		return nil, unknownApp(fmt.Sprintf("task %d is for Go app %q, but this is a generic pool (parsl pool), which runs only bash apps; send Go apps to an executor whose pools run the program's own binary (PARSL_ROLE=pool)", t.ID, t.App))
	}
	app, ok := registry.Lookup(t.App)
	if !ok {
		return nil, unknownApp(fmt.Sprintf("app %q of task %d is not registered in this pool's binary; start pools from the same executable as the driver (is the app registered at package level?)", t.App, t.ID))
	}
	if app.Kind != registry.Go {
		return nil, &failure.AppError{TaskID: t.ID, App: t.App, Kind: "unsupported",
			Message: fmt.Sprintf("%s app %q cannot run in a worker pool without a command", app.Kind, t.App)}
	}
	if len(t.Args) != len(app.Params) {
		return nil, &failure.SerializationError{TaskID: t.ID, App: t.App, Arg: min(len(t.Args), len(app.Params)) + 1,
			Err: fmt.Errorf("the task carries %d arguments, the app takes %d", len(t.Args), len(app.Params))}
	}
	args := make([]any, len(t.Args))
	for i, raw := range t.Args {
		v, err := app.Params[i].Decode(raw)
		if err != nil {
			return nil, &failure.SerializationError{TaskID: t.ID, App: t.App, Arg: i + 1, Err: err}
		}
		args[i] = v
	}
	var (
		res any
		err error
	)
	if t.Walltime > 0 {
		res, err = p.invokeWithWalltime(ctx, app, t, args)
	} else {
		res, err = invoke(ctx, app, t.ID, args)
	}
	if err != nil {
		return nil, err
	}
	if err := checkOutputs(t); err != nil {
		return nil, err
	}
	// Checked before and after encoding: a cyclic result would overflow
	// this pool's stack, and one above the interchange's decode limits
	// would make it drop the pool; either way every retry would do the
	// same. Fail just this task, with the reason.
	raw, err := codec.MarshalChecked(res, app.Result.Type, codec.Limits{Nesting: wire.MaxResultNesting, Plain: app.Result.HasInterface})
	if err != nil {
		return nil, &failure.SerializationError{TaskID: t.ID, App: t.App, Arg: 0, Rule: codec.RuleOf(err), Err: err}
	}
	if limit := p.maxResult(); len(raw) > limit {
		// The interchange would drop the whole pool for a frame above its
		// limit; fail just this task instead.
		return nil, &failure.SerializationError{TaskID: t.ID, App: t.App, Arg: 0, Rule: "size",
			Err: fmt.Errorf("the encoded result is %d bytes, above the frame limit of %d; return a path to a file instead of large data", len(raw), limit)}
	}
	return raw, nil
}

// unknownAppError is a task for an app the pool cannot run; it becomes
// wire.ErrUnknownApp, for which package failure has no type.
type unknownAppError struct{ msg string }

func (e *unknownAppError) Error() string { return e.msg }

func unknownApp(msg string) error { return &unknownAppError{msg} }

// invoke calls the app, turning a returned error or a panic into an
// *failure.AppError, as the threads executor does.
func invoke(ctx context.Context, app *registry.App, id int64, args []any) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			res = nil
			err = &failure.AppError{TaskID: id, App: app.Name, Kind: "panic", Panicked: true,
				Message: fmt.Sprint(r), Stack: string(debug.Stack())}
		}
	}()
	res, err = app.Invoke(ctx, args)
	if err != nil {
		// Err stays nil: only Kind and Message cross the wire, and a
		// wrapped failure type inside the app's error must not be
		// mistaken for the pool's own verdict by wire.FromError.
		return nil, &failure.AppError{TaskID: id, App: app.Name, Kind: fmt.Sprintf("%T", err), Message: err.Error()}
	}
	return res, nil
}

type outcome struct {
	res any
	err error
}

// invokeWithWalltime runs the app on its own goroutine so that the task
// fails at its deadline even when the app ignores its context.
func (p *pool) invokeWithWalltime(ctx context.Context, app *registry.App, t *wire.Task, args []any) (any, error) {
	tctx, cancel := context.WithTimeout(ctx, t.Walltime)
	defer cancel()
	ch := make(chan outcome, 1)
	p.abandoned.Add(1)
	go func() {
		defer p.abandoned.Done()
		r, err := invoke(tctx, app, t.ID, args)
		ch <- outcome{r, err}
	}()
	walltimeErr := &failure.WalltimeError{TaskID: t.ID, App: t.App, Walltime: t.Walltime}
	select {
	case o := <-ch:
		if o.err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, walltimeErr
		}
		return o.res, o.err
	case <-tctx.Done():
		select {
		case o := <-ch: // finished at the same moment
			if o.err == nil {
				return o.res, nil
			}
		case <-time.After(10 * time.Millisecond):
			// The goroutine stays counted in p.abandoned; Serve waits
			// for it, within its grace, before returning.
			p.nAbandon.Add(1)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("task %d (%s) cancelled: the pool is shutting down", t.ID, t.App)
		}
		return nil, walltimeErr
	}
}

func (p *pool) runBash(ctx context.Context, worker int, t *wire.Task) error {
	env := p.envs[worker]
	if !t.Resources.IsZero() {
		env = appendResourceEnv(env[:len(env):len(env)], t.Resources)
	}
	r, err := p.sh.Run(ctx, bash.Spec{
		Command:  t.Command,
		Env:      env,
		Stdout:   t.Stdout,
		Stderr:   t.Stderr,
		Truncate: t.Truncate,
		Walltime: t.Walltime,
	})
	if err != nil {
		return &failure.AppError{TaskID: t.ID, App: t.App, Kind: fmt.Sprintf("%T", err), Message: err.Error()}
	}
	switch {
	case r.TimedOut:
		return &failure.WalltimeError{TaskID: t.ID, App: t.App, Walltime: t.Walltime}
	case r.Canceled:
		return fmt.Errorf("bash app task %d (%s) cancelled: the pool is shutting down", t.ID, t.App)
	case r.ExitCode != 0:
		return &failure.BashExitError{TaskID: t.ID, App: t.App, ExitCode: r.ExitCode, Stderr: t.Stderr, StderrTail: r.StderrTail}
	}
	return checkOutputs(t)
}

func checkOutputs(t *wire.Task) error {
	var missing []string
	for _, path := range t.Outputs {
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		return &failure.MissingOutputsError{TaskID: t.ID, App: t.App, Paths: missing}
	}
	return nil
}

// maxResult is the largest encoded result a results frame can carry.
func (p *pool) maxResult() int {
	limit := p.cfg.MaxFrame
	if limit <= 0 {
		limit = wire.DefaultMaxFrame
	}
	return limit - 1024 // room for the frame's other fields
}

// appendResourceEnv adds PARSL_<KEY> for each resource the task asked for,
// as Parsl's workers do with the keys of a resource specification.
func appendResourceEnv(env []string, r executor.ResourceSpec) []string {
	for _, kv := range [...]struct {
		key string
		v   int
	}{
		{"PARSL_CORES", r.Cores}, {"PARSL_MEMORY_MB", r.MemoryMB}, {"PARSL_GPUS", r.GPUs},
		{"PARSL_NODES", r.Nodes}, {"PARSL_RANKS", r.Ranks}, {"PARSL_RANKS_PER_NODE", r.RanksPerNode},
	} {
		if kv.v != 0 {
			env = append(env, kv.key+"="+strconv.Itoa(kv.v))
		}
	}
	return env
}
