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
)

// Options configures the executor. Zero fields take Parsl's defaults.
type Options struct {
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
	// Blocks is the number of blocks started by Start; default 1. A
	// negative value starts none (pools then join by themselves).
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
}

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

	ix   *interchange.Interchange
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
	blockJob  map[string]string // block ID → job ID
	joined    map[string]bool   // blocks whose pool ever registered
	refused   int
	launched  int
	connected int

	wg   sync.WaitGroup
	quit chan struct{}
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
	if opts.Blocks == 0 {
		opts.Blocks = 1
	}
	if opts.Launcher == nil {
		opts.Launcher = defaultLauncher
	}
	e := &Executor{opts: opts, blockJob: map[string]string{}, joined: map[string]bool{}, quit: make(chan struct{})}
	for i := range e.shards {
		e.shards[i].m = map[int64]entry{}
	}
	return e
}

// Label implements executor.Executor.
func (e *Executor) Label() string { return e.opts.Label }

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
	if e.encrypted() {
		b, err := certs.Generate(filepath.Join(e.dir, "certificates"), ips, 0)
		if err != nil {
			return fmt.Errorf("htex %q: %w", e.opts.Label, err)
		}
		ixo.TLS = b.ServerConfig()
		pc.CAFile, pc.ServerName = b.CAFile, certs.ServerName
	}
	e.ix, err = interchange.New(ixo)
	if err != nil {
		return fmt.Errorf("htex %q: %w", e.opts.Label, err)
	}
	pc.Addresses = poolAddresses(e.ix.Addr())
	e.cfg = filepath.Join(e.dir, "pool.json")
	if err := wire.WritePoolConfig(e.cfg, pc); err != nil {
		_ = e.ix.Close()
		return fmt.Errorf("htex %q: writing the pool configuration: %w", e.opts.Label, err)
	}
	e.prov = e.opts.Provider
	if e.prov == nil {
		e.prov = local.New(local.Options{})
	}
	for i := 0; i < e.opts.Blocks; i++ {
		if err := e.startBlock(ctx, strconv.Itoa(i)); err != nil {
			e.stopAll(context.Background())
			return err
		}
	}
	e.wg.Add(1)
	go e.watchBlocks()
	e.log.Info("htex started", "address", e.ix.Addr().String(), "tls", e.encrypted(), "blocks", max(e.opts.Blocks, 0), "pool_config", e.cfg)
	return nil
}

// poolAddresses lists what pools should dial: the listening address, or
// this host's name when listening on every interface.
func poolAddresses(a net.Addr) []string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return []string{a.String()}
	}
	port := strconv.Itoa(ta.Port)
	var out []string
	if h, err := os.Hostname(); err == nil {
		out = append(out, net.JoinHostPort(h, port))
	}
	return append(out, net.JoinHostPort("127.0.0.1", port))
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
	e.blockJob[id] = job
	e.launched++
	e.mu.Unlock()
	e.log.Info("htex block started", "block", id, "job", job)
	return nil
}

// Submit implements executor.Executor.
func (e *Executor) Submit(t *executor.Task) error {
	wt := wire.Task{
		ID: t.ID, Try: t.Try, App: t.App.Name, Command: t.Command,
		Walltime: t.Opts.Walltime, Stdout: t.Opts.Stdout, Stderr: t.Opts.Stderr, Truncate: t.Opts.StdTruncate,
		Outputs: t.Opts.Outputs, Priority: t.Opts.Priority, Resources: t.Opts.Resources,
	}
	var serr error
	if t.App.Kind != registry.Bash && len(t.Args) > 0 {
		wt.Args = make([]codec.RawMessage, len(t.Args))
		for i, a := range t.Args {
			b, err := codec.Marshal(a)
			if err != nil {
				serr = &failure.SerializationError{TaskID: t.ID, App: t.App.Name, Arg: i + 1, Err: err}
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
			serr = &failure.SerializationError{TaskID: t.ID, App: t.App.Name, Err: fmt.Errorf(
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

func (e *Executor) onManager(m interchange.ManagerInfo, gone bool, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gone {
		e.connected--
		return
	}
	e.connected++
	e.joined[m.BlockID] = true
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

// watchBlocks notices blocks that end while no pool is connected: without
// it, tasks would wait for a pool that will never come.
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
		jobs := append([]string(nil), e.jobs...)
		connected := e.connected
		e.mu.Unlock()
		if len(jobs) == 0 || connected > 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sts, err := e.prov.Status(ctx, jobs)
		cancel()
		if err != nil {
			e.log.Warn("htex: block status failed", "err", err)
			continue
		}
		var last provider.JobStatus
		ended := 0
		for _, st := range sts {
			if st.State.Terminal() {
				ended++
				last = st
			}
		}
		e.mu.Lock()
		connected = e.connected
		e.mu.Unlock()
		if ended < len(sts) || connected > 0 {
			continue
		}
		select {
		case <-e.quit:
			return
		default:
		}
		e.setBad(fmt.Sprintf("every block has ended and no pool is connected; last block (job %s) ended %s with exit code %d%s; see %s%s",
			last.JobID, last.State, last.ExitCode, msgSuffix(last.Message), last.StderrPath, tail(last.StderrPath)))
		return
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
	err := e.stopAll(ctx)
	e.failAll(func(t *executor.Task) error {
		return fmt.Errorf("htex executor %q shut down before task %d finished: %w", e.opts.Label, t.ID, failure.ErrDFKClosed)
	})
	e.wg.Wait()
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
	n := 0
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
