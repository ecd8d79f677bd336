// Package htex is the high-throughput executor: the driver-side half of
// Parsl's HighThroughputExecutor. It runs an interchange in this process,
// starts worker pools as blocks through a provider (by default the same
// executable, started with PARSL_ROLE=pool), and moves tasks and results
// between the dataflow kernel and the pools over TCP, TLS by default.
//
// A Go app runs in a pool without any function serialization: the task
// carries the app's registered name and its CBOR-encoded arguments, and the
// handshake refuses a pool whose build or app registry differs from the
// driver's.
//
// A pool that goes silent for Options.HeartbeatThreshold (stopped, hung,
// cut off) is dropped and its tasks fail with a retryable
// ManagerLostError. Pools never reconnect, so once every pool of a block
// is lost the block is failed, its job cancelled through the provider
// (the stopped process killed, the batch job cancelled) and the scaling
// strategy starts a replacement within MaxBlocks. A pool that wakes after
// its drop starts none of the tasks it still held and exits; its late
// results are ignored.
package htex

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/certs"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/launcher"
	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/provider/local"
	"github.com/parsl-go/parsl/scaling"
	"github.com/parsl-go/parsl/staging"
)

// Options configures the executor. Zero fields take Parsl's defaults.
type Options struct {
	// WorkingDir is where this executor's tasks resolve relative File
	// paths and where their staged files go (Parsl's working_dir); ""
	// means the run directory. parsl.WorkDir overrides it per task.
	WorkingDir string
	// StorageAccess limits the staging providers this executor's tasks may
	// use (Parsl's storage_access); nil means staging/defaults.
	StorageAccess []staging.Provider

	// Label names the executor; default "htex".
	Label string
	// MaxWorkersPerNode is the number of tasks a pool runs at once;
	// default one per CPU of this machine.
	MaxWorkersPerNode int
	// Prefetch is how many tasks a pool may hold beyond its workers, so
	// that workers never wait for the network; default 0 as in Parsl.
	Prefetch int
	// CoresPerWorker and MemPerWorkerMB let a pool lower its worker count
	// to what its node can hold (0 = no bound).
	CoresPerWorker float64
	MemPerWorkerMB int
	// Accelerators are device names, one pinned to each worker.
	Accelerators []string
	// HeartbeatPeriod is how often both sides send heartbeats; default 30 s.
	HeartbeatPeriod time.Duration
	// HeartbeatThreshold is the silence after which either side gives the
	// other up; default 120 s.
	HeartbeatThreshold time.Duration
	// DrainPeriod makes a pool drain that long after it starts (0 = never).
	DrainPeriod time.Duration
	// Encrypted turns TLS on (nil = true). With false, tasks, results and
	// the handshake cross the network in clear; the secret still keeps
	// strangers from taking tasks.
	Encrypted *bool
	// Address is the host:port the interchange listens on; default
	// "127.0.0.1:0", right for the local provider. Compute nodes need an
	// address they can reach.
	Address string
	// MaxFrame bounds the frames the interchange and pools accept; default
	// wire.DefaultMaxFrame.
	MaxFrame int
	// Provider starts blocks; default a local provider.
	Provider provider.Provider
	// InitBlocks, MinBlocks and MaxBlocks bound the blocks the scaling
	// strategy (Config.Strategy) keeps: InitBlocks start at Load, and the
	// count then moves between MinBlocks and MaxBlocks with the load.
	// When all three are zero they are Parsl's provider defaults: init 1,
	// min 0, max 1. A zero MaxBlocks otherwise means max(InitBlocks,
	// MinBlocks, 1).
	InitBlocks, MinBlocks, MaxBlocks int
	// Parallelism (0..1) is the fraction of outstanding tasks that should
	// have a worker slot; 0 means Parsl's default 1, and a negative value
	// asks for Parsl's parallelism 0 (one block as soon as there is work).
	Parallelism float64
	// NodesPerBlock is how many nodes (one pool each) a block has, for
	// the strategy's count of worker slots per block. 0 asks the provider
	// (the batch providers report their own NodesPerBlock), else 1.
	NodesPerBlock int
	// Blocks is deprecated: when InitBlocks, MinBlocks and MaxBlocks are
	// all zero, Blocks > 0 keeps exactly that many blocks (init = min =
	// max = Blocks), and a negative value starts none (pools then join by
	// themselves).
	Blocks int
	// Walltime of each block (0 = unknown); pools drain before it ends and
	// get no task that cannot finish in time.
	Walltime time.Duration
	// Launcher wraps the pool command for the block; default
	// launcher.SingleNode.
	Launcher launcher.Launcher
	// PoolCommand starts a pool; default this executable (which must call
	// parsl.Main first). `parsl pool` is the generic, bash-only pool.
	PoolCommand []string
	// WorkerEnv is added to the environment of every block.
	WorkerEnv []string
	// RefusedLimit is how many pools may be refused by the handshake (for
	// a build or registry mismatch) before the executor gives up and fails
	// its tasks; default the number of blocks started (at least 1).
	RefusedLimit int
	// FailureThreshold is how many blocks must fail at start, with no
	// block ever running, before the executor is marked bad; default
	// scaling.DefaultFailureThreshold (3).
	FailureThreshold int
	// Interchange says where the interchange runs: "" (default) in this
	// process; "process" as a child process of this executable
	// (PARSL_ROLE=interchange) that the executor starts, connects to and
	// stops; or the "host:port" of the driver address of an interchange
	// started with `parsl interchange`, for sites where compute nodes
	// cannot reach the submit host (see remote.go).
	Interchange string
	// InterchangeDir, with a host:port Interchange, is the directory made
	// by `parsl interchange --init DIR`: its interchange.json names the
	// secret, CA and address file the executor and pools use.
	InterchangeDir string
	// ResourceInterval is how often pools sample the resources (CPU time,
	// memory, threads, I/O) of running tasks when the executor has a
	// Monitor (SetMonitor; monitoring on in parsl.Config): 0 means
	// DefaultResourceInterval, ResourceStartEnd samples each task only at
	// its start and end. A bash task's numbers are those of its command's
	// process tree; a Go task's are those of its whole pool process, since
	// Go apps are goroutines of the pool.
	ResourceInterval time.Duration
	// NoResourceMonitoring keeps pools from sampling tasks even when the
	// executor has a Monitor (Parsl's resource_monitoring_enabled=False);
	// blocks and nodes are still recorded.
	NoResourceMonitoring bool
}

// Scaling defaults, as Parsl's Config.
const (
	DefaultStrategyPeriod = 5 * time.Second
	DefaultMaxIdleTime    = 120 * time.Second
)

// block is one block started through the provider. Guarded by
// Executor.mu.
type block struct {
	job      string
	started  time.Time
	scaledIn bool // ScaleIn removes it: neither capacity nor a failure
	ended    bool // the provider reported a terminal state, or its pools were lost
	final    provider.JobStatus
	// cancelDue: one of the block's pools was lost while it still ran
	// (silent past the heartbeat threshold, or its connection broke), so
	// it is ended (final FAILED) and cancelLoop is to cancel its job,
	// which may still hold a stopped or hung process and its tasks.
	cancelDue bool
	// cancelling: a Cancel of its job is under way (cancelLoop, ScaleIn).
	cancelling bool
	// settled: its job was cancelled (or cancelling it failed), so a try
	// lost with one of its pools is reported at once; until then such a
	// try is parked here. Reporting it earlier would have the kernel
	// retry it while the lost try's processes still run: the task's side
	// effects twice, the two tries overlapping.
	settled bool
	parked  []parkedTry
}

// parkedTry is a try lost with its pool, held until its block's job is
// cancelled.
type parkedTry struct {
	t   *executor.Task
	err error // a *failure.ManagerLostError
}

// maxFailures bounds the failures remembered for the strategy.
const maxFailures = 16

// BadStateError is why an executor stopped taking tasks: every pool it
// started was refused or exited without joining. Tasks fail with an
// *failure.ExecutorError wrapping it.
type BadStateError struct {
	Label  string
	Reason string
}

// Error implements error.
func (e *BadStateError) Error() string {
	return fmt.Sprintf("htex executor %q cannot run tasks: %s", e.Label, e.Reason)
}

// Executor is the high-throughput executor. Create it with New.
type Executor struct {
	opts Options
	env  executor.Env
	log  *slog.Logger
	dir  string
	cfg  string // pool configuration file

	ix   broker // in-process, or the link to a standalone interchange
	prov provider.Provider

	// life orders Submit against Shutdown and bad state: Submit holds it
	// shared while it checks the state and records the task.
	life    sync.RWMutex
	started bool
	closed  bool
	bad     *BadStateError

	shards [nShards]shard

	mu        sync.Mutex
	jobs      []string          // provider job IDs, one per block
	blocks    map[string]*block // block ID → block
	order     []string          // block IDs in start order
	nextBlock int
	failures  []scaling.Failure // blocks that ended without ever joining
	joined    map[string]bool   // blocks whose pool ever registered
	live      map[string]int    // connected managers per block
	parkedN   int               // tries parked on blocks, still outstanding
	refused   int
	launched  int
	connected int

	scfg scaling.Config
	loop *scaling.Loop // set by Start, closed first by Shutdown

	// Monitoring (monitor.go): mon is set by SetMonitor before Start, pump
	// runs from Start to Shutdown when mon is set. blockStates (the last
	// state recorded per block) and nodes (per manager ID) are guarded by
	// mu.
	mon         Monitor
	pump        *monPump
	blockStates map[string]provider.JobState
	nodes       map[string]nodeEntry

	wg   sync.WaitGroup
	quit chan struct{}
	kick chan struct{} // wakes cancelLoop: a block is due for cancelling
}

const nShards = 64

// frameOverhead is the room a tasks frame needs besides one task: the
// frame header and the batch's CBOR envelope.
const frameOverhead = 32

// shard is one slice of the table of tasks given to the interchange. Many
// shards keep result delivery from several pools and submits from the
// kernel off each other's locks.
type shard struct {
	mu sync.Mutex
	m  map[int64]entry
	_  [40]byte // keep shards on separate cache lines
}

type entry struct {
	t   *executor.Task
	try int
}

// New returns an executor; Load starts it.
func New(opts Options) *Executor {
	if opts.Label == "" {
		opts.Label = "htex"
	}
	if opts.MaxWorkersPerNode <= 0 {
		opts.MaxWorkersPerNode = runtime.NumCPU()
	}
	if opts.Prefetch < 0 {
		opts.Prefetch = 0
	}
	if opts.HeartbeatPeriod <= 0 {
		opts.HeartbeatPeriod = 30 * time.Second
	}
	if opts.HeartbeatThreshold <= 0 {
		opts.HeartbeatThreshold = 120 * time.Second
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = wire.DefaultMaxFrame
	}
	switch {
	case opts.InitBlocks != 0 || opts.MinBlocks != 0 || opts.MaxBlocks != 0:
		if opts.MaxBlocks == 0 {
			opts.MaxBlocks = max(opts.InitBlocks, opts.MinBlocks, 1)
		}
	case opts.Blocks > 0:
		opts.InitBlocks, opts.MinBlocks, opts.MaxBlocks = opts.Blocks, opts.Blocks, opts.Blocks
	case opts.Blocks < 0:
		// No block at all: pools started by hand join by themselves.
	default:
		opts.InitBlocks, opts.MinBlocks, opts.MaxBlocks = 1, 0, 1
	}
	if opts.NodesPerBlock <= 0 {
		// The provider knows: saying it twice invites the two to differ,
		// and then the strategy asks for too many or too few blocks.
		if np, ok := opts.Provider.(interface{ NodesPerBlock() int }); ok {
			opts.NodesPerBlock = np.NodesPerBlock()
		}
	}
	if opts.NodesPerBlock <= 0 {
		opts.NodesPerBlock = 1
	}
	switch {
	case opts.Parallelism == 0:
		opts.Parallelism = 1
	case opts.Parallelism < 0:
		opts.Parallelism = 0
	case opts.Parallelism > 1:
		opts.Parallelism = 1
	}
	if opts.Launcher == nil {
		opts.Launcher = defaultLauncher
	}
	e := &Executor{opts: opts, blocks: map[string]*block{}, joined: map[string]bool{}, live: map[string]int{}, quit: make(chan struct{}), kick: make(chan struct{}, 1),
		blockStates: map[string]provider.JobState{}, nodes: map[string]nodeEntry{}}
	for i := range e.shards {
		e.shards[i].m = map[int64]entry{}
	}
	return e
}

// Label implements executor.Executor.
func (e *Executor) Label() string { return e.opts.Label }

// WorkingDir returns Options.WorkingDir (parsl.WorkingDirExecutor).
func (e *Executor) WorkingDir() string { return e.opts.WorkingDir }

// StorageAccess returns Options.StorageAccess (parsl.StorageAccessExecutor).
func (e *Executor) StorageAccess() []staging.Provider { return e.opts.StorageAccess }

func (e *Executor) encrypted() bool { return e.opts.Encrypted == nil || *e.opts.Encrypted }

// Start implements executor.Executor: it makes the run's certificates and
// secret, starts the interchange, writes the pool configuration and starts
// the blocks.
func (e *Executor) Start(ctx context.Context, env executor.Env) (err error) {
	e.life.Lock()
	defer e.life.Unlock()
	if e.started {
		return fmt.Errorf("htex executor %q started twice; create one per Config", e.opts.Label)
	}
	e.started = true
	e.env = env
	e.log = env.Logger
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	// The provider is needed below for its script directory and walltime.
	e.prov = e.opts.Provider
	if e.prov == nil {
		e.prov = local.New(local.Options{})
	}
	runDir := env.RunDir
	if runDir == "" {
		runDir = "."
	}
	e.dir, err = filepath.Abs(filepath.Join(runDir, e.opts.Label))
	if err != nil {
		return fmt.Errorf("htex %q: run directory: %w", e.opts.Label, err)
	}
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return fmt.Errorf("htex %q: creating %s: %w", e.opts.Label, e.dir, err)
	}
	// Cluster providers keep their submit scripts in the run directory, as
	// Parsl does, so that a failed block can be inspected afterwards.
	if s, ok := e.prov.(interface{ SetScriptDir(string) }); ok {
		if dir, err := filepath.Abs(filepath.Join(runDir, "submit_scripts")); err == nil {
			s.SetScriptDir(dir)
		}
	}
	// A block's walltime is the provider's business; knowing it lets pools
	// drain in time and the interchange hold back tasks that cannot finish.
	if e.opts.Walltime == 0 {
		if w, ok := e.prov.(interface{ BlockWalltime() time.Duration }); ok {
			e.opts.Walltime = w.BlockWalltime()
		}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("htex %q: making the run secret: %w", e.opts.Label, err)
	}
	secretFile := filepath.Join(e.dir, "secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		return fmt.Errorf("htex %q: writing the run secret: %w", e.opts.Label, err)
	}
	ixo := interchange.Options{
		Address:            e.opts.Address,
		Secret:             secret,
		Expect:             wire.Expect{BuildID: registry.BuildID(), Digest: registry.Digest()},
		HeartbeatPeriod:    e.opts.HeartbeatPeriod,
		HeartbeatThreshold: e.opts.HeartbeatThreshold,
		MaxFrame:           e.opts.MaxFrame,
		Logger:             e.log.With("component", "interchange"),
		Deliver:            e.deliver,
		OnRefused:          e.onRefused,
		OnManager:          e.onManager,
	}
	pc := wire.PoolConfig{
		SecretFile:         secretFile,
		Workers:            e.opts.MaxWorkersPerNode,
		Prefetch:           e.opts.Prefetch,
		CoresPerWorker:     e.opts.CoresPerWorker,
		MemPerWorkerMB:     e.opts.MemPerWorkerMB,
		Accelerators:       e.opts.Accelerators,
		HeartbeatPeriod:    e.opts.HeartbeatPeriod,
		HeartbeatThreshold: e.opts.HeartbeatThreshold,
		DrainPeriod:        e.opts.DrainPeriod,
		Walltime:           e.opts.Walltime,
		MaxFrame:           e.opts.MaxFrame,
		LogDir:             e.dir,
	}
	var ips []net.IP
	if host, _, err := net.SplitHostPort(e.opts.Address); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
	} else {
		ips = append(ips, net.IPv4(127, 0, 0, 1))
	}
	if e.mon != nil {
		e.pump = startPump(e.mon)
		defer func() {
			if err != nil {
				e.pump.close(context.Background())
				e.pump = nil
			}
		}()
		ixo.OnMonitor = e.onMonitor
		pc.Monitor, pc.MonitorInterval = true, e.resourceInterval()
		if e.opts.NoResourceMonitoring {
			// The pool still sends its node's description.
			pc.MonitorInterval = -1
		}
	}
	if e.encrypted() {
		b, err := certs.Generate(filepath.Join(e.dir, "certificates"), ips, 0)
		if err != nil {
			return fmt.Errorf("htex %q: %w", e.opts.Label, err)
		}
		ixo.TLS = b.ServerConfig()
		pc.CAFile, pc.ServerName = b.CAFile, certs.ServerName
	}
	if err := e.startBroker(ctx, ixo, &pc); err != nil {
		return err
	}
	e.cfg = filepath.Join(e.dir, "pool.json")
	if err := wire.WritePoolConfig(e.cfg, pc); err != nil {
		_ = e.ix.Close()
		return fmt.Errorf("htex %q: writing the pool configuration: %w", e.opts.Label, err)
	}
	e.scfg = scaling.Config{
		MinBlocks: max(e.opts.MinBlocks, 0), InitBlocks: max(e.opts.InitBlocks, 0), MaxBlocks: max(e.opts.MaxBlocks, 0),
		Parallelism: e.opts.Parallelism, MaxIdleTime: env.MaxIdleTime, Strategy: env.Strategy,
		FailureThreshold: e.opts.FailureThreshold,
	}
	if e.opts.Walltime > 0 {
		// A block is replaced once its walltime is nearly over; with
		// short walltimes the default two minutes would make every block
		// "expiring" from birth and have each period start another.
		e.scfg.WalltimeMargin = min(scaling.DefaultWalltimeMargin, e.opts.Walltime/4)
	}
	if e.scfg.MaxIdleTime <= 0 {
		e.scfg.MaxIdleTime = DefaultMaxIdleTime
	}
	if e.scfg.Strategy == "" {
		e.scfg.Strategy = scaling.Simple
	}
	period := env.StrategyPeriod
	if period <= 0 {
		period = DefaultStrategyPeriod
	}
	// The first decision is made here, not on the loop's goroutine: the
	// initial blocks are then submitted before Load returns, and a
	// provider that cannot submit fails Load as it always did.
	snap, err := e.snapshot(ctx)
	if err != nil {
		e.stopAll(context.Background())
		return err
	}
	acts, st := scaling.Decide(snap, scaling.State{})
	for _, a := range acts {
		if a.Kind != scaling.ScaleOut {
			continue
		}
		for range a.Count {
			if err := e.startBlock(ctx, e.newBlockID()); err != nil {
				e.stopAll(context.Background())
				return err
			}
		}
	}
	e.loop = scaling.StartLoop(e, scaling.LoopOptions{
		Period:   period,
		Snapshot: e.snapshot,
		Initial:  st,
		OnBad:    e.setBad,
		OnError: func(err error) {
			e.log.Warn("htex: scaling", "err", err)
		},
		OnDecision: func(s scaling.Snapshot, acts []scaling.Action) {
			for _, a := range acts {
				e.log.Info("htex: scaling decision", "action", a.Kind.String(), "count", a.Count, "blocks", a.BlockIDs,
					"reason", a.Reason, "outstanding", s.Outstanding)
			}
		},
	})
	e.wg.Add(2)
	go e.watchBlocks()
	go e.cancelLoop()
	e.log.Info("htex started", "address", e.ix.Addr().String(), "tls", e.encrypted(), "init_blocks", e.scfg.InitBlocks,
		"min_blocks", e.scfg.MinBlocks, "max_blocks", e.scfg.MaxBlocks, "strategy", e.scfg.Strategy, "strategy_period", period,
		"max_idle_time", e.scfg.MaxIdleTime, "pool_config", e.cfg)
	return nil
}

// newBlockID allocates the next block ID ("0", "1", ... as in Parsl).
func (e *Executor) newBlockID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := strconv.Itoa(e.nextBlock)
	e.nextBlock++
	return id
}

// ScaleOut implements scaling.Scaler: it starts n blocks through the
// provider. A block that cannot be submitted counts as a failed block, so
// that a provider that always refuses marks the executor bad, as in
// Parsl.
func (e *Executor) ScaleOut(ctx context.Context, n int) error {
	var errs []error
	for range n {
		id := e.newBlockID()
		if err := e.startBlock(ctx, id); err != nil {
			if ctx.Err() != nil {
				return errors.Join(append(errs, err)...)
			}
			e.mu.Lock()
			e.addFailure(scaling.Failure{BlockID: id, State: provider.Failed, ExitCode: -1, Message: err.Error()})
			e.mu.Unlock()
			e.monitorBlock(id, "", provider.Failed)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ScaleIn implements scaling.Scaler: the managers of the blocks get no
// more tasks and those with none in flight exit; after a short grace for
// that clean exit the blocks' jobs are cancelled. A task still in flight
// then (the strategy picks idle blocks, so only one dispatched since its
// snapshot) fails as ManagerLost, which the kernel retries.
func (e *Executor) ScaleIn(ctx context.Context, ids []string) error {
	var jobs []string
	var bs []*block
	want := map[string]bool{}
	jobOf := map[string]string{}
	e.mu.Lock()
	for _, id := range ids {
		b := e.blocks[id]
		if b == nil || b.scaledIn || b.ended {
			continue
		}
		// A try lost with its pool from now on (one dispatched since the
		// strategy's snapshot) waits for the Cancel below.
		b.scaledIn, b.cancelling = true, true
		bs = append(bs, b)
		jobs = append(jobs, b.job)
		want[id] = true
		jobOf[id] = b.job
	}
	e.mu.Unlock()
	if len(jobs) == 0 {
		return nil
	}
	for id := range want {
		e.ix.DrainBlock(id)
	}
	grace := time.NewTimer(2 * time.Second)
	defer grace.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		left := false
		for _, m := range e.ix.Managers() {
			if want[m.BlockID] {
				left = true
				break
			}
		}
		if !left {
			break
		}
		select {
		case <-ctx.Done():
			break wait
		case <-grace.C:
			break wait
		case <-tick.C:
		}
	}
	// Cancel even when ctx is done (Shutdown): the jobs must not outlive
	// the executor, and stopAll cancels them again anyway.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.prov.Cancel(cctx, jobs)
	if err == nil {
		for id := range want {
			err = errors.Join(err, waitBlockProcs(cctx, e.cfg, id))
		}
	}
	for _, b := range bs {
		e.settle(b, err)
	}
	if err != nil {
		return fmt.Errorf("htex %q: cancelling scaled-in blocks %v: %w", e.opts.Label, ids, err)
	}
	for id, job := range jobOf {
		e.monitorBlock(id, job, provider.ScaledIn)
	}
	e.log.Info("htex blocks scaled in", "blocks", ids, "jobs", jobs)
	return nil
}

// addFailure records a block failure for the strategy; needs e.mu.
func (e *Executor) addFailure(f scaling.Failure) {
	e.failures = append(e.failures, f)
	if len(e.failures) > maxFailures {
		e.failures = append(e.failures[:0], e.failures[len(e.failures)-maxFailures:]...)
	}
}

// markEnded records that a block's job reached a terminal state and
// reports whether that is news. A block that ended on its own without its
// pool ever joining is a failure, described with the tail of its stderr,
// which is what a user needs to fix the cause. Needs e.mu.
func (e *Executor) markEnded(id string, st provider.JobStatus) bool {
	b := e.blocks[id]
	if b == nil || b.ended {
		return false
	}
	b.ended, b.final = true, st
	if !b.scaledIn && !e.joined[id] {
		path := st.StderrPath
		if path == "" {
			path = filepath.Join(e.dir, "block-"+id+".err")
		}
		msg := st.Message
		if t := strings.TrimPrefix(tail(path), ": "); t != "" {
			msg = strings.TrimSpace(msg + "\n" + t)
		}
		e.addFailure(scaling.Failure{BlockID: id, State: st.State, ExitCode: st.ExitCode, Message: msg})
	}
	return true
}

// snapshot is what the strategy sees: outstanding tasks, the provider's
// state of every live block with its pools' load, idleness and walltime
// left, and the block failures.
func (e *Executor) snapshot(ctx context.Context) (scaling.Snapshot, error) {
	e.mu.Lock()
	var ids, jobs []string
	for _, id := range e.order {
		if b := e.blocks[id]; !b.ended {
			ids, jobs = append(ids, id), append(jobs, b.job)
		}
	}
	e.mu.Unlock()
	var sts []provider.JobStatus
	if len(jobs) > 0 {
		var err error
		if sts, err = e.prov.Status(ctx, jobs); err != nil {
			return scaling.Snapshot{}, fmt.Errorf("htex %q: block status: %w", e.opts.Label, err)
		}
		if len(sts) != len(jobs) {
			return scaling.Snapshot{}, fmt.Errorf("htex %q: block status: %d answers for %d jobs", e.opts.Label, len(sts), len(jobs))
		}
	}
	for i, st := range sts {
		e.monitorBlock(ids[i], jobs[i], st.State)
	}
	now := time.Now()
	type load struct {
		tasks    int
		busy     bool
		idle     time.Time
		deadline time.Time
	}
	loads := map[string]*load{}
	for _, m := range e.ix.Managers() {
		l := loads[m.BlockID]
		if l == nil {
			l = &load{}
			loads[m.BlockID] = l
		}
		l.tasks += m.InFlight
		if m.IdleSince.IsZero() {
			l.busy = true
		} else if m.IdleSince.After(l.idle) {
			l.idle = m.IdleSince
		}
		if !m.Deadline.IsZero() && (l.deadline.IsZero() || m.Deadline.Before(l.deadline)) {
			l.deadline = m.Deadline
		}
	}
	snap := scaling.Snapshot{Now: now, Outstanding: e.Outstanding(), SlotsPerBlock: e.opts.MaxWorkersPerNode * e.opts.NodesPerBlock, Config: e.scfg}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, id := range ids {
		b := e.blocks[id]
		if sts[i].State.Terminal() {
			e.markEnded(id, sts[i])
			continue
		}
		if b.scaledIn {
			continue // on its way out: not capacity
		}
		blk := scaling.Block{ID: id, State: sts[i].State}
		var deadline time.Time
		if e.opts.Walltime > 0 {
			deadline = b.started.Add(e.opts.Walltime)
		}
		if l := loads[id]; l != nil {
			blk.Tasks = l.tasks
			if !l.busy {
				blk.IdleSince = l.idle
			}
			if !l.deadline.IsZero() {
				deadline = l.deadline
			}
		}
		if !deadline.IsZero() {
			// Past its deadline a block has no time left, but zero would
			// mean "unlimited".
			blk.WalltimeLeft = max(deadline.Sub(now), time.Nanosecond)
		}
		snap.Blocks = append(snap.Blocks, blk)
	}
	snap.Failures = append([]scaling.Failure(nil), e.failures...)
	snap.Ran = len(e.joined) > 0
	return snap, nil
}

func (e *Executor) startBlock(ctx context.Context, id string) error {
	cmd := e.opts.PoolCommand
	if len(cmd) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("htex %q: finding this executable to start pools: %w (set Options.PoolCommand)", e.opts.Label, err)
		}
		cmd = []string{exe}
	}
	// A provider that applies its own launcher (srun on Slurm) gets the
	// bare command, or the pool would be launched twice over.
	if l, ok := e.prov.(interface{ AppliesLauncher() bool }); !ok || !l.AppliesLauncher() {
		cmd = e.opts.Launcher(cmd, 1, 1)
	} else if !isDefaultLauncher(e.opts.Launcher) {
		e.log.Warn("htex Launcher ignored: the provider applies its own launcher; set it on the provider", "block", id)
	}
	env := append([]string{"PARSL_ROLE=pool", wire.PoolConfigEnv + "=" + e.cfg, wire.BlockIDEnv + "=" + id}, e.opts.WorkerEnv...)
	// The label keeps the job names of two executors apart in the
	// scheduler's queue.
	job, err := e.prov.Submit(ctx, cmd, env, e.opts.Label+"."+id,
		filepath.Join(e.dir, "block-"+id+".out"), filepath.Join(e.dir, "block-"+id+".err"))
	if err != nil {
		return fmt.Errorf("htex %q: starting block %s: %w", e.opts.Label, id, err)
	}
	e.mu.Lock()
	e.jobs = append(e.jobs, job)
	e.blocks[id] = &block{job: job, started: time.Now()}
	e.order = append(e.order, id)
	e.launched++
	e.mu.Unlock()
	e.monitorBlock(id, job, provider.Pending)
	e.log.Info("htex block started", "block", id, "job", job)
	return nil
}

// Submit implements executor.Executor.
func (e *Executor) Submit(t *executor.Task) error {
	stdout, stderr := t.StdPaths()
	wt := wire.Task{
		ID: t.ID, Try: t.Try, App: t.App.Name, Command: t.Command,
		Walltime: t.Opts.Walltime, Stdout: stdout, Stderr: stderr, Truncate: t.Opts.StdTruncate,
		Outputs: t.Opts.Outputs, Priority: t.Opts.Priority, Resources: t.Opts.Resources,
	}
	var serr error
	if t.App.Kind != registry.Bash && len(t.Args) > 0 {
		wt.Args = make([]codec.RawMessage, len(t.Args))
		for i, a := range t.Args {
			// Checked against the pool's decode limits here: a pool that
			// cannot decode a frame drops the connection, losing every
			// task in it, and would do so again on every retry.
			var static reflect.Type
			if i < len(t.App.Params) {
				static = t.App.Params[i].Type
			}
			b, err := codec.MarshalChecked(a, static, codec.Limits{Nesting: wire.MaxArgNesting})
			if err != nil {
				serr = &failure.SerializationError{TaskID: t.ID, App: t.App.Name, Arg: i + 1, Rule: codec.RuleOf(err), Err: err}
				break
			}
			wt.Args[i] = b
		}
	}
	var payload []byte
	if serr == nil {
		var err error
		if payload, err = codec.Marshal(&wt); err != nil {
			serr = &failure.SerializationError{TaskID: t.ID, App: t.App.Name, Err: fmt.Errorf("encoding the task: %w", err)}
		} else if len(payload) > e.opts.MaxFrame-frameOverhead {
			// A pool would drop the connection on such a frame; fail the
			// one task instead, saying what to change.
			serr = &failure.SerializationError{TaskID: t.ID, App: t.App.Name, Rule: "size", Err: fmt.Errorf(
				"the encoded task is %d bytes, above the executor's MaxFrame of %d; pass large data as files, or raise Options.MaxFrame", len(payload), e.opts.MaxFrame)}
		}
	}

	e.life.RLock()
	defer e.life.RUnlock()
	switch {
	case !e.started:
		return fmt.Errorf("htex executor %q is not started", e.opts.Label)
	case e.closed:
		return failure.ErrDFKClosed
	case e.bad != nil:
		return e.bad
	}
	if serr != nil {
		// Done must not run inside Submit: the kernel may resubmit from
		// Done. A goroutine owned by the executor reports it instead.
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			t.Done(nil, serr)
		}()
		return nil
	}
	s := &e.shards[uint64(t.ID)%nShards]
	s.mu.Lock()
	s.m[t.ID] = entry{t: t, try: t.Try}
	s.mu.Unlock()
	e.ix.Enqueue(interchange.Item{ID: t.ID, Try: t.Try, Priority: t.Opts.Priority, Walltime: t.Opts.Walltime,
		Bash: t.Command != "", Payload: payload})
	return nil
}

// take removes the task of a result from the table; nil when the result is
// stale (another try) or the task was already failed.
func (e *Executor) take(id int64, try int) *executor.Task {
	s := &e.shards[uint64(id)%nShards]
	s.mu.Lock()
	en, ok := s.m[id]
	if !ok || en.try != try {
		s.mu.Unlock()
		return nil
	}
	delete(s.m, id)
	s.mu.Unlock()
	return en.t
}

// deliver is the interchange's result callback.
func (e *Executor) deliver(rs []wire.Result, from interchange.ManagerInfo) {
	for i := range rs {
		r := &rs[i]
		t := e.take(r.ID, r.Try)
		if t == nil {
			continue
		}
		var (
			res any
			err error
		)
		switch {
		case r.Err != nil:
			err = r.Err.ToError(t.ID, t.App.Name, t.Opts.Walltime, from.Hostname)
			var ml *failure.ManagerLostError
			if errors.As(err, &ml) {
				ml.Manager = from.Name
				if e.park(t, err, from) {
					continue
				}
			}
			var ae *failure.AppError
			if errors.As(err, &ae) && ae.Kind == "" {
				ae.Kind = "remote"
			}
		case t.App.Kind == registry.Bash && len(r.Result) == 0:
			res = 0
		default:
			v, derr := t.App.Result.Decode(r.Result)
			if derr != nil {
				err = &failure.SerializationError{TaskID: t.ID, App: t.App.Name, Err: fmt.Errorf("decoding the result from pool %s: %w", from.Name, derr)}
			} else {
				res = v
			}
		}
		t.Done(res, err)
	}
}

// park holds try t, lost with manager from, on the manager's block until
// the block's job is cancelled (settle), and reports whether it did. A
// lost manager's tasks may still run: a stopped pool's bash tasks run on
// in process groups of their own, and so does a hung pool. The interchange
// says that a manager is gone before it reports the manager's lost tries,
// but a standalone interchange forwards only the tries when no driver was
// connected at the time, so the loss of a block may be learnt here first;
// it is then failed and cancelled as onManager would.
func (e *Executor) park(t *executor.Task, err error, from interchange.ManagerInfo) bool {
	e.mu.Lock()
	b := e.blocks[from.BlockID]
	if b == nil || b.settled {
		// Not a block of ours (a pool started by hand): nothing to cancel.
		e.mu.Unlock()
		return false
	}
	select {
	case <-e.quit:
		// Shutdown: the retry is refused anyway, and stopAll cancels
		// every job.
		e.mu.Unlock()
		return false
	default:
	}
	lost := e.blockLostLocked(from.BlockID, "a pool was lost with tasks in flight")
	if !b.cancelDue && !b.cancelling && !b.scaledIn {
		// Ended by itself (the provider saw its job end) but never
		// cancelled: what it started may outlive it.
		b.cancelDue = true
	}
	b.parked = append(b.parked, parkedTry{t: t, err: err})
	e.parkedN++
	e.mu.Unlock()
	e.wakeCanceller()
	if lost != nil {
		e.blockLost(from.BlockID, lost)
	}
	return true
}

// wakeCanceller has cancelLoop look for blocks due for cancelling now.
func (e *Executor) wakeCanceller() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// settle reports the tries parked on block b once its job is cancelled;
// cerr is why cancelling failed, if it did, and is added to their
// ManagerLostError: the lost try may then still run.
func (e *Executor) settle(b *block, cerr error) {
	e.mu.Lock()
	b.cancelling, b.settled = false, true
	ps := b.parked
	b.parked = nil
	e.parkedN -= len(ps)
	e.mu.Unlock()
	for _, p := range ps {
		if cerr != nil {
			var ml *failure.ManagerLostError
			if errors.As(p.err, &ml) {
				ml.Reason += fmt.Sprintf("; cancelling its block failed (%v), so this try may still be running", cerr)
			}
		}
		p.t.Done(nil, p.err)
	}
}

// settleAll reports every parked try (Shutdown, after stopAll).
func (e *Executor) settleAll(cerr error) {
	e.mu.Lock()
	var bs []*block
	for _, id := range e.order {
		if b := e.blocks[id]; len(b.parked) > 0 || b.cancelling {
			bs = append(bs, b)
		}
	}
	e.mu.Unlock()
	for _, b := range bs {
		e.settle(b, cerr)
	}
}

func (e *Executor) onManager(m interchange.ManagerInfo, gone bool, reason string) {
	e.mu.Lock()
	var lost *block
	if gone {
		e.connected--
		e.live[m.BlockID]--
		if e.live[m.BlockID] <= 0 {
			delete(e.live, m.BlockID)
		}
		if !m.Draining {
			// Neither drained nor told to leave: lost, with its tasks,
			// which may still run. The whole block is cancelled at once,
			// even when it has other pools: only that kills the lost
			// pool's tasks before they are retried.
			lost = e.blockLostLocked(m.BlockID, reason)
		}
	} else {
		e.connected++
		e.joined[m.BlockID] = true
		e.live[m.BlockID]++
	}
	e.mu.Unlock()
	e.monitorManager(m, gone)
	if lost != nil {
		e.blockLost(m.BlockID, lost)
	}
}

// blockLost logs and records a block that blockLostLocked failed, and has
// cancelLoop cancel it at once.
func (e *Executor) blockLost(id string, b *block) {
	e.wakeCanceller()
	e.log.Warn("htex: a pool of a block was lost; cancelling the block so that its tasks die before they are retried and the strategy replaces it",
		"block", id, "job", b.job, "reason", b.final.Message)
	e.monitorBlock(id, b.job, provider.Failed)
}

// blockLostLocked marks block id lost when one of its managers went
// without draining. Pools never reconnect, so such a block gives less
// capacity, yet its job may run on for ever: a stopped (SIGSTOP) or hung
// pool is dropped at the heartbeat threshold while its process, and the
// tasks it started, live. The block is then failed, no longer counted by
// the strategy (which replaces it within max_blocks), and its job is
// cancelled by cancelLoop. Blocks being scaled in, already ended, or lost
// during Shutdown are left alone. Needs e.mu; returns the block or nil.
func (e *Executor) blockLostLocked(id, why string) *block {
	b := e.blocks[id]
	if b == nil || b.ended || b.scaledIn {
		return nil
	}
	select {
	case <-e.quit:
		return nil // stopAll cancels every job
	default:
	}
	b.cancelDue, b.ended = true, true
	b.final = provider.JobStatus{JobID: b.job, State: provider.Failed, ExitCode: -1,
		Message:    "its pools were lost (" + why + "); the block was cancelled",
		StderrPath: filepath.Join(e.dir, "block-"+id+".err")}
	return b
}

func (e *Executor) onRefused(r interchange.Refusal) {
	if r.Auth {
		// A peer without the secret proves nothing about our pools; it is
		// logged by the interchange and otherwise ignored.
		return
	}
	e.mu.Lock()
	e.refused++
	limit := e.opts.RefusedLimit
	if limit <= 0 {
		limit = max(1, e.launched)
	}
	over := e.refused >= limit
	e.mu.Unlock()
	e.log.Error("htex: a pool was refused", "block", r.BlockID, "reason", r.Reason)
	if over {
		e.setBad(fmt.Sprintf("%d pool(s) refused by the handshake; last: %s", limit, r.Reason))
	}
}

// setBad puts the executor in bad state: Submit refuses, and every task
// it holds fails with an ExecutorError naming the reason.
func (e *Executor) setBad(reason string) {
	e.life.Lock()
	if e.bad != nil || e.closed {
		e.life.Unlock()
		return
	}
	e.bad = &BadStateError{Label: e.opts.Label, Reason: reason}
	bad := e.bad
	e.life.Unlock()
	e.log.Error("htex: executor failed; failing its tasks", "reason", reason)
	e.failAll(func(t *executor.Task) error {
		return &failure.ExecutorError{TaskID: t.ID, App: t.App.Name, Executor: e.opts.Label, Err: bad}
	})
}

// failAll drops every queued task and fails every task in the table.
func (e *Executor) failAll(why func(*executor.Task) error) {
	if e.ix != nil {
		e.ix.Purge()
	}
	var ts []*executor.Task
	for i := range e.shards {
		s := &e.shards[i]
		s.mu.Lock()
		for id, en := range s.m {
			ts = append(ts, en.t)
			delete(s.m, id)
		}
		s.mu.Unlock()
	}
	for _, t := range ts {
		t.Done(nil, why(t))
	}
}

// watchBlocks notices blocks that end while no pool is connected: the
// scaling loop is poked to replace them (or to mark the executor bad after
// repeated failures) at once rather than a period later. With strategy
// "none" nothing replaces a block, so when every block has ended the
// executor goes bad here; without it, tasks would wait for a pool that
// will never come.
func (e *Executor) watchBlocks() {
	defer e.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-e.quit:
			return
		case <-tick.C:
		}
		e.mu.Lock()
		var ids, jobs []string
		total := 0
		for _, id := range e.order {
			b := e.blocks[id]
			if b.scaledIn {
				continue
			}
			total++
			if !b.ended {
				ids, jobs = append(ids, id), append(jobs, b.job)
			}
		}
		connected := e.connected
		e.mu.Unlock()
		if total == 0 || connected > 0 {
			continue
		}
		var sts []provider.JobStatus
		if len(jobs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var err error
			sts, err = e.prov.Status(ctx, jobs)
			cancel()
			if err != nil || len(sts) != len(jobs) {
				e.log.Warn("htex: block status failed", "err", err)
				continue
			}
		}
		for i, st := range sts {
			e.monitorBlock(ids[i], jobs[i], st.State)
		}
		e.mu.Lock()
		news := false
		for i, st := range sts {
			if st.State.Terminal() && e.markEnded(ids[i], st) {
				news = true
			}
		}
		var last *block
		ended := 0
		for _, id := range e.order {
			if b := e.blocks[id]; !b.scaledIn && b.ended {
				ended++
				last = b
			}
		}
		connected = e.connected
		e.mu.Unlock()
		if news {
			e.loop.Poke()
		}
		if e.scfg.Strategy != scaling.None || ended < total || connected > 0 || last == nil {
			continue
		}
		select {
		case <-e.quit:
			return
		default:
		}
		f := last.final
		e.setBad(fmt.Sprintf("every block has ended and no pool is connected; last block (job %s) ended %s with exit code %d%s; see %s%s",
			f.JobID, f.State, f.ExitCode, msgSuffix(f.Message), f.StderrPath, tail(f.StderrPath)))
		return
	}
}

// cancelLoop runs cancelLost whenever a block is due for cancelling.
func (e *Executor) cancelLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.quit:
			return
		case <-e.kick:
		}
		e.cancelLost()
	}
}

// cancelLost cancels, through the provider, the jobs of blocks whose pools
// were lost (blockLostLocked), after asking the strategy for their
// replacement, and then reports the tries parked on them. The local
// provider kills the block's process group (at once when the process is
// stopped) and returns once it is reaped; the bash tasks, in groups of
// their own, die with their pool (internal/bash), which waitBlockProcs
// waits for. A batch provider cancels the job (scancel).
func (e *Executor) cancelLost() {
	e.mu.Lock()
	var ids, jobs []string
	var bs []*block
	for _, id := range e.order {
		if b := e.blocks[id]; b.cancelDue {
			b.cancelDue, b.cancelling = false, true
			ids, jobs, bs = append(ids, id), append(jobs, b.job), append(bs, b)
		}
	}
	e.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	e.loop.Poke()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Shutdown need not wait for a slow scheduler here: stopAll cancels
	// every job itself.
	go func() {
		select {
		case <-e.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := e.prov.Cancel(ctx, jobs)
	if err != nil {
		e.log.Error("htex: cancelling blocks whose pools were lost failed; their jobs may still run", "blocks", ids, "jobs", jobs, "err", err)
	} else {
		for _, id := range ids {
			if werr := waitBlockProcs(ctx, e.cfg, id); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		if err != nil {
			e.log.Error("htex: processes of cancelled blocks still run", "blocks", ids, "err", err)
		}
		e.log.Info("htex: blocks whose pools were lost cancelled", "blocks", ids, "jobs", jobs)
	}
	for _, b := range bs {
		e.settle(b, err)
	}
}

// tail returns the end of a block's stderr file, to put the pool's own
// words into the executor's error.
func tail(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const n = 512
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	if s := strings.TrimSpace(string(b)); s != "" {
		return ": " + s
	}
	return ""
}

func msgSuffix(m string) string {
	if m == "" {
		return ""
	}
	return " (" + m + ")"
}

// Shutdown implements executor.Executor: it tells pools to exit, cancels
// the blocks, closes the interchange and fails the tasks still held.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.life.Lock()
	if !e.started || e.closed {
		e.closed = true
		e.life.Unlock()
		return nil
	}
	e.closed = true
	e.life.Unlock()
	// The loop goes first, so that no block is started or scaled in
	// while the blocks are being stopped.
	if e.loop != nil {
		_ = e.loop.Close()
	}
	err := e.stopAll(ctx)
	// Every job is cancelled now: the parked tries can be reported (their
	// retries are refused, the executor being closed).
	e.settleAll(err)
	e.failAll(func(t *executor.Task) error {
		return fmt.Errorf("htex executor %q shut down before task %d finished: %w", e.opts.Label, t.ID, failure.ErrDFKClosed)
	})
	e.wg.Wait()
	if e.pump != nil {
		e.closeMonitor(ctx)
	}
	return err
}

func (e *Executor) stopAll(ctx context.Context) error {
	select {
	case <-e.quit:
	default:
		close(e.quit)
	}
	var errs []error
	if e.ix != nil {
		// A clean exit first: pools finish writing and leave.
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := e.ix.Shutdown(sctx); err != nil {
			e.log.Warn("htex: pools did not leave in time; cancelling their blocks", "err", err)
		}
		cancel()
	}
	e.mu.Lock()
	jobs := append([]string(nil), e.jobs...)
	e.mu.Unlock()
	if len(jobs) > 0 && e.prov != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := e.prov.Cancel(cctx, jobs); err != nil {
			errs = append(errs, fmt.Errorf("htex %q: cancelling blocks: %w", e.opts.Label, err))
		}
		cancel()
	}
	if e.ix != nil {
		if err := e.ix.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Addr returns the interchange's address ("" before Start).
func (e *Executor) Addr() string {
	if e.ix == nil {
		return ""
	}
	return e.ix.Addr().String()
}

// PoolConfigPath returns the pool configuration file written by Start.
func (e *Executor) PoolConfigPath() string { return e.cfg }

// JobIDs returns the provider job IDs of the blocks started (process IDs
// with the local provider).
func (e *Executor) JobIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.jobs...)
}

// Managers returns the pools connected now.
func (e *Executor) Managers() []interchange.ManagerInfo {
	if e.ix == nil {
		return nil
	}
	return e.ix.Managers()
}

// Outstanding returns the number of tasks given to the executor and not
// yet reported.
func (e *Executor) Outstanding() int {
	e.mu.Lock()
	// Parked tries count: the kernel retries them, and the strategy is to
	// start their block's replacement while the block is cancelled.
	n := e.parkedN
	e.mu.Unlock()
	for i := range e.shards {
		s := &e.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// defaultLauncher is launcher.SingleNode under a name that
// isDefaultLauncher can recognise (funcs cannot be compared).
var defaultLauncher launcher.Launcher = launcher.SingleNode

func isDefaultLauncher(l launcher.Launcher) bool {
	return reflect.ValueOf(l).Pointer() == reflect.ValueOf(defaultLauncher).Pointer()
}
