// Package workerpool is the pool side of the high-throughput executor: one
// process per node (the program's own binary started with PARSL_ROLE=pool,
// or the generic `parsl pool` for bash-only work) that connects to the
// driver's interchange, takes batches of tasks, runs them on a fixed set of
// workers, and sends batches of results back.
//
// A pool runs its workers as goroutines of one process. Go apps therefore
// share the process environment, so the per-worker values Parsl passes in
// environment variables (rank, pinned accelerator) reach Go apps through
// their context instead; see WorkerFromContext. Bash tasks get them as
// environment variables, as in Parsl.
package workerpool

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parsl-go/parsl/internal/bash"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/internal/wire"
)

// Defaults used when neither the configuration nor the interchange's
// welcome sets a value; they are Parsl's.
const (
	DefaultHeartbeatPeriod    = 30 * time.Second
	DefaultHeartbeatThreshold = 120 * time.Second
	// DefaultShutdownGrace is how long Serve waits for Go apps to return
	// after their context was cancelled.
	DefaultShutdownGrace = 2 * time.Second
)

// ErrInterchangeLost is wrapped by the error Serve returns when the
// interchange went silent for the heartbeat threshold or closed the
// connection while the pool was not draining.
var ErrInterchangeLost = errors.New("parsl pool: lost contact with the interchange")

// Options are the parts of a pool that do not come from its configuration
// file. The zero value is usable.
type Options struct {
	// Logger receives the pool's log; nil discards it.
	Logger *slog.Logger
	// Manager is the pool's unique id; "" makes a random one.
	Manager string
	// Cores and MemoryMB describe the node, for CoresPerWorker and
	// MemPerWorkerMB; 0 reads $PARSL_CORES (else the CPU count) and
	// $PARSL_MEMORY_GB (else the available memory), as Parsl does.
	Cores    float64
	MemoryMB float64
	// Drain, when it becomes readable (closed), makes the pool drain: it
	// asks for no more tasks, finishes the ones it has and exits. Main
	// closes it on SIGTERM or SIGINT.
	Drain <-chan struct{}
	// ShutdownGrace bounds the wait for Go apps to return after their
	// context was cancelled at shutdown; default DefaultShutdownGrace.
	// Go cannot stop a goroutine, so an app that ignores its context is
	// abandoned after it (the process exits soon after anyway).
	ShutdownGrace time.Duration
}

// NewManagerID returns a random pool id (16 hex digits).
func NewManagerID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

// errShutdown is how the reader tells Serve that the interchange sent
// TShutdown; Serve turns it into a nil return.
var errShutdown = errors.New("shutdown requested by the interchange")

// pool is one running Serve.
type pool struct {
	cfg     wire.PoolConfig
	log     *slog.Logger
	manager string
	workers []Worker
	envs    [][]string // per worker, for bash tasks
	grace   time.Duration

	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer

	// runCtx is the parent of every task context; cancelling it kills
	// running bash commands and asks Go apps to stop.
	runCtx    context.Context
	cancelRun context.CancelFunc

	// The task queue: the reader appends whole decoded batches, workers
	// take tasks from the first one. Keeping batches whole means a task
	// is never copied or moved while it waits, however far the
	// interchange runs ahead.
	qmu     sync.Mutex
	qcond   sync.Cond
	batches [][]wire.Task
	head    int // next task in batches[0]
	idle    int // workers waiting on qcond
	closed  bool

	// outstanding counts tasks received and not yet answered; received
	// counts all tasks ever received (idle detection).
	outstanding atomic.Int64
	received    atomic.Int64
	// lastContact is the UnixNano of the last frame from the interchange.
	lastContact atomic.Int64
	// lastTick is the UnixNano of the control loop's last tick. A gap
	// longer than frozenAfter means the process was stopped (SIGSTOP) or
	// starved long enough for the interchange to drop it and give its
	// tasks to other pools: workers then start nothing more, and the
	// loop stops the pool, whatever frames were still buffered.
	lastTick    atomic.Int64
	frozenAfter time.Duration

	out outbox
	// mon samples running tasks' resources; nil unless the configuration
	// and the interchange both want it.
	mon   *sampler
	cores float64 // Options.Cores, for the node description

	// abandoned tracks app goroutines left running past their walltime.
	abandoned sync.WaitGroup
	nAbandon  atomic.Int64

	// sh runs the bash tasks; their processes die with the pool, even
	// when it is killed with SIGKILL, so that a retry elsewhere never
	// overlaps them.
	sh bash.Runner
}

// Serve runs a pool until the interchange tells it to stop, the pool has
// drained, contact is lost, or ctx is done. It returns nil after a
// shutdown asked for by the interchange or a completed drain; a
// *wire.RefusedError when the interchange refused the pool; a
// *ConnectError when no address answered within the heartbeat threshold;
// an error wrapping ErrInterchangeLost when the interchange went away; and
// an error wrapping ctx's error when ctx ended first.
func Serve(ctx context.Context, cfg wire.PoolConfig, opts Options) error {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	manager := opts.Manager
	if manager == "" {
		manager = NewManagerID()
	}
	if len(cfg.Addresses) == 0 {
		return &configError{errors.New("parsl pool: the configuration names no interchange address")}
	}
	secret, err := readSecret(cfg.SecretFile)
	if err != nil {
		return &configError{err}
	}
	tc, err := tlsConfig(cfg.CAFile, cfg.ServerName)
	if err != nil {
		return &configError{err}
	}
	threshold := cfg.HeartbeatThreshold
	if threshold <= 0 {
		threshold = DefaultHeartbeatThreshold
	}

	n := workerCount(cfg, opts.Cores, opts.MemoryMB)
	host, _ := os.Hostname()
	log.Info("pool starting", "manager", manager, "block", cfg.BlockID, "host", host, "workers", n,
		"addresses", cfg.Addresses, "tls", tc != nil, "generic", cfg.Generic)

	hello := wire.Hello{
		Generic:  cfg.Generic,
		Manager:  manager,
		Hostname: host,
		BlockID:  cfg.BlockID,
		Workers:  n,
		Prefetch: cfg.Prefetch,
	}
	if !cfg.Generic {
		// A generic pool is not held to the driver's build, and its own
		// registry has nothing the driver needs.
		hello.BuildID = registry.BuildID()
		hello.Digest = registry.Digest()
	}
	var (
		conn    net.Conn
		r       *bufio.Reader
		w       *bufio.Writer
		welcome wire.Welcome
	)
	deadline := time.Now().Add(threshold)
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		if conn, err = dial(ctx, cfg.Addresses, time.Until(deadline), tc); err != nil {
			return err
		}
		r, w = bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 64<<10)
		if cfg.Walltime > 0 {
			hello.WalltimeLeft = max(cfg.Walltime-time.Since(start), time.Nanosecond)
		}
		_ = conn.SetDeadline(time.Now().Add(threshold))
		welcome, err = wire.ClientHandshake(r, w, secret, hello)
		if err == nil {
			break
		}
		conn.Close()
		var re *wire.RefusedError
		if errors.As(err, &re) {
			log.Error("the interchange refused this pool", "reason", re.Reason)
			return re
		}
		// An interchange that closes the connection mid-handshake has
		// not refused this pool: its handshake deadline passed while many
		// pools joined at once, or it is guarding against a flood from
		// this address. Try again while the threshold allows.
		if !closedByPeer(err) || time.Until(deadline) < backoff || ctx.Err() != nil {
			return fmt.Errorf("parsl pool: handshake with the interchange at %s failed: %w", conn.RemoteAddr(), err)
		}
		log.Warn("the interchange closed the connection during the handshake; retrying", "address", conn.RemoteAddr().String(), "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("parsl pool: connecting to the interchange: %w", ctx.Err())
		case <-time.After(backoff):
		}
	}
	p := &pool{
		cfg:     cfg,
		log:     log,
		manager: manager,
		conn:    conn,
		r:       r,
		w:       w,
		grace:   opts.ShutdownGrace,
		cores:   opts.Cores,
	}
	if p.grace <= 0 {
		p.grace = DefaultShutdownGrace
	}
	p.workers, p.envs = makeWorkers(n, manager, cfg.BlockID, cfg.Accelerators)
	_ = conn.SetDeadline(time.Time{})

	switch {
	case cfg.Monitor && welcome.Monitor:
		p.mon = newSampler(log, manager, n, cfg.MonitorInterval, opts.MemoryMB, &p.out)
	case cfg.Monitor:
		log.Warn("the interchange does not accept monitoring messages (an older version?); no resource samples are sent")
	}

	period := firstPositive(cfg.HeartbeatPeriod, welcome.HeartbeatPeriod, DefaultHeartbeatPeriod)
	threshold = firstPositive(cfg.HeartbeatThreshold, welcome.HeartbeatThreshold, DefaultHeartbeatThreshold)
	// The interchange's threshold decides the drop, and it counts from
	// our last heartbeat, up to a period before the freeze.
	ixThreshold := firstPositive(welcome.HeartbeatThreshold, threshold)
	p.frozenAfter = max(ixThreshold-period, ixThreshold/2)
	log.Info("joined the interchange", "address", conn.RemoteAddr().String(), "heartbeat_period", period, "heartbeat_threshold", threshold)
	return p.run(ctx, start, period, threshold, opts.Drain)
}

func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// run is the pool's control loop: it owns the reader, writer and worker
// goroutines, sends heartbeats, watches liveness and decides when to drain
// and when to stop.
func (p *pool) run(ctx context.Context, start time.Time, period, threshold time.Duration, drainCh <-chan struct{}) (err error) {
	p.qcond.L = &p.qmu
	p.out.init()
	p.runCtx, p.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	p.lastContact.Store(time.Now().UnixNano())
	p.lastTick.Store(time.Now().UnixNano())

	var wg sync.WaitGroup
	for i := range p.workers {
		wg.Go(func() { p.work(i) })
	}
	readerDone := make(chan error, 1)
	writerDone := make(chan error, 1)
	stopWriter := make(chan struct{})
	var ioWG sync.WaitGroup
	ioWG.Go(func() { readerDone <- p.read() })
	ioWG.Go(func() { writerDone <- p.write(stopWriter) })
	if p.mon != nil {
		node := p.mon.node(p.cores)
		p.out.post(func(o *outbox) { o.node = node })
		if !p.mon.off {
			ioWG.Go(func() { p.mon.run(stopWriter) })
		}
	}

	defer func() {
		// Order matters: stop tasks first so bash commands die, then the
		// connection so the reader and writer return, then wait.
		p.cancelRun()
		p.closeQueue()
		close(stopWriter)
		p.conn.Close()
		ioWG.Wait()
		if !waitTimeout(&wg, p.grace) {
			p.log.Warn("some Go apps ignored cancellation and are still running; abandoning them", "grace", p.grace)
		}
		if err := p.sh.Close(); err != nil {
			p.log.Warn("stopping bash tasks", "error", err)
		}
		if !waitTimeout(&p.abandoned, p.grace) {
			p.log.Warn("Go apps that passed their walltime are still running; abandoning them", "count", p.nAbandon.Load())
		}
		if n := p.out.droppedSamples(); n > 0 {
			p.log.Warn("resource samples dropped: the interchange read them more slowly than they were made", "samples", n)
		}
		p.log.Info("pool stopped", "error", err)
	}()

	tick := min(period/2, threshold/4, time.Second)
	tick = max(tick, 5*time.Millisecond)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()

	var drainAt time.Time
	if p.cfg.DrainPeriod > 0 {
		drainAt = start.Add(p.cfg.DrainPeriod)
	}
	if wt := p.cfg.Walltime; wt > 0 {
		// Leave time to finish tasks and report before the batch system
		// ends the block; the interchange already sends no task that
		// cannot finish within the walltime left.
		margin := min(max(wt/20, period), wt/2)
		if at := start.Add(wt - margin); drainAt.IsZero() || at.Before(drainAt) {
			drainAt = at
		}
	}
	var (
		draining    bool
		drainReason string
		byOperator  bool // drained on a signal: exit once idle
		idleSince   = time.Now()
		lastRecv    int64
		lastBeat    = time.Now()
	)
	startDrain := func(reason string) {
		if draining {
			return
		}
		draining, drainReason = true, reason
		p.log.Info("draining: asking the interchange for no more tasks", "reason", reason)
		p.out.post(func(o *outbox) { o.drain = true })
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("parsl pool: stopped: %w", context.Cause(ctx))
		case err := <-readerDone:
			switch {
			case errors.Is(err, errShutdown):
				p.log.Info("the interchange asked the pool to shut down")
				return nil
			case errors.Is(err, io.EOF) && draining:
				p.log.Info("the interchange closed the connection after the drain")
				return nil
			case errors.Is(err, io.EOF):
				return fmt.Errorf("%w: the interchange at %s closed the connection", ErrInterchangeLost, p.conn.RemoteAddr())
			}
			var fe *wire.FrameError
			if errors.As(err, &fe) {
				p.log.Error("malformed frame from the interchange", "error", err)
				return fmt.Errorf("parsl pool: malformed frame from the interchange: %w", err)
			}
			return fmt.Errorf("%w: reading from %s: %v", ErrInterchangeLost, p.conn.RemoteAddr(), err)
		case err := <-writerDone:
			return fmt.Errorf("%w: writing to %s: %v", ErrInterchangeLost, p.conn.RemoteAddr(), err)
		case <-drainCh:
			drainCh = nil
			byOperator = true
			startDrain("signal")
		case <-ticker.C:
			// Not the tick's own time: after a SIGCONT it is from before
			// the stop.
			now := time.Now()
			if gap := now.Sub(time.Unix(0, p.lastTick.Load())); p.frozenAfter > 0 && gap > p.frozenAfter {
				p.log.Error("this pool was frozen past the heartbeat threshold; its tasks were given to other pools; stopping", "frozen", gap, "threshold", threshold)
				return fmt.Errorf("%w: this pool was frozen for %s (stopped, or starved of CPU), long enough for the interchange to drop it and give its tasks to other pools",
					ErrInterchangeLost, gap.Round(time.Millisecond))
			}
			p.lastTick.Store(now.UnixNano())
			if now.Sub(lastBeat) >= period-tick/2 {
				lastBeat = now
				p.out.post(func(o *outbox) { o.heartbeat = true })
			}
			if silent := now.Sub(time.Unix(0, p.lastContact.Load())); silent > threshold {
				p.log.Error("no message from the interchange within the heartbeat threshold; stopping", "silent", silent, "threshold", threshold)
				return fmt.Errorf("%w: nothing heard for %s (heartbeat threshold %s); the driver is probably gone",
					ErrInterchangeLost, silent.Round(time.Millisecond), threshold)
			}
			if r := p.received.Load(); r != lastRecv || p.outstanding.Load() > 0 {
				lastRecv = r
				idleSince = now
			}
			idle := now.Sub(idleSince)
			switch {
			case !drainAt.IsZero() && !now.Before(drainAt):
				startDrain("drain period or block walltime reached")
			case p.cfg.IdleTimeout > 0 && idle >= p.cfg.IdleTimeout:
				startDrain("idle timeout")
			}
			// A drained pool normally waits for the interchange's
			// TShutdown; do not rely on it for ever.
			if draining && p.outstanding.Load() == 0 && p.out.empty() {
				wait := threshold
				if byOperator {
					wait = period
				}
				if idle >= wait {
					p.log.Info("drained and idle; exiting", "reason", drainReason)
					return nil
				}
			}
		}
	}
}

// waitTimeout waits for wg at most d. On a timeout its helper goroutine
// stays until wg is done: it is what is left of apps Go cannot stop, and
// the pool process exits right after Serve anyway.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// read takes frames from the interchange until the connection ends.
func (p *pool) read() error {
	for {
		t, payload, err := wire.ReadFrame(p.r, p.cfg.MaxFrame)
		if err != nil {
			return err
		}
		p.lastContact.Store(time.Now().UnixNano())
		switch t {
		case wire.TTasks:
			var batch wire.Tasks
			if err := wire.Decode(t, payload, &batch); err != nil {
				return err
			}
			p.enqueue(batch.Tasks)
		case wire.THeartbeat:
		case wire.TShutdown:
			return errShutdown
		default:
			return &wire.FrameError{Reason: fmt.Sprintf("unexpected %s frame from the interchange", t)}
		}
	}
}

func (p *pool) enqueue(ts []wire.Task) {
	if len(ts) == 0 {
		return
	}
	p.outstanding.Add(int64(len(ts)))
	p.received.Add(int64(len(ts)))
	p.qmu.Lock()
	p.batches = append(p.batches, ts)
	wake := min(p.idle, len(ts))
	p.qmu.Unlock()
	if wake == len(p.workers) || wake > 1 {
		p.qcond.Broadcast()
	} else if wake == 1 {
		p.qcond.Signal()
	}
}

func (p *pool) closeQueue() {
	p.qmu.Lock()
	p.closed = true
	p.qmu.Unlock()
	p.qcond.Broadcast()
}

// next blocks until a task is queued or the queue is closed.
func (p *pool) next() (wire.Task, bool) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	for len(p.batches) == 0 && !p.closed {
		p.idle++
		p.qcond.Wait()
		p.idle--
	}
	if p.closed || p.frozen() {
		// A frozen pool's tasks may already run elsewhere; the control
		// loop stops the pool on its next tick.
		return wire.Task{}, false
	}
	b := p.batches[0]
	t := b[p.head]
	b[p.head] = wire.Task{} // let the arguments be collected
	p.head++
	if p.head == len(b) {
		p.batches[0] = nil
		p.batches, p.head = p.batches[1:], 0
		if len(p.batches) == 0 {
			p.batches = nil // the next append starts a small slice
		}
	}
	return t, true
}

// frozen reports whether the control loop has not ticked for longer than
// frozenAfter (see lastTick).
func (p *pool) frozen() bool {
	return p.frozenAfter > 0 && time.Since(time.Unix(0, p.lastTick.Load())) > p.frozenAfter
}

func (p *pool) work(i int) {
	w := &p.workers[i]
	ctx := context.WithValue(p.runCtx, workerKey{}, *w)
	for {
		t, ok := p.next()
		if !ok {
			return
		}
		if p.mon != nil && !p.mon.off {
			p.mon.begin(i, &t)
		}
		r := p.runTask(ctx, i, &t)
		if p.runCtx.Err() != nil {
			return // shutting down: nobody will read the result
		}
		if p.mon != nil && !p.mon.off {
			// Before the result, so that the driver has the task's last
			// sample when the task completes.
			p.mon.end(i, &t)
		}
		p.out.put(r)
		p.outstanding.Add(-1)
	}
}

// outbox holds what the writer goroutine sends next. Workers append
// results; the writer takes everything at once, so results leave in
// batches under load and one by one when the pool is quiet.
type outbox struct {
	mu        sync.Mutex
	results   []wire.Result
	heartbeat bool
	drain     bool
	busy      bool // the writer holds a batch not yet flushed
	wake      chan struct{}

	// Monitoring: the node's description (sent once) and resource
	// samples; dropped counts samples refused because too many waited.
	node    *wire.NodeInfo
	samples []wire.ResourceSample
	dropped int64
}

func (o *outbox) init() { o.wake = make(chan struct{}, 1) }

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) put(r wire.Result) {
	o.mu.Lock()
	o.results = append(o.results, r)
	first := len(o.results) == 1
	o.mu.Unlock()
	if first {
		// Later results of the same batch find the writer already woken.
		o.signal()
	}
}

// putSamples queues resource samples, dropping them when too many are
// already waiting.
func (o *outbox) putSamples(ss ...wire.ResourceSample) {
	o.mu.Lock()
	if len(o.samples)+len(ss) > maxPendingSamples {
		o.dropped += int64(len(ss))
		o.mu.Unlock()
		return
	}
	o.samples = append(o.samples, ss...)
	first := len(o.samples) == len(ss)
	o.mu.Unlock()
	if first {
		o.signal()
	}
}

func (o *outbox) post(f func(*outbox)) {
	o.mu.Lock()
	f(o)
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) droppedSamples() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

func (o *outbox) empty() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.results) == 0 && len(o.samples) == 0 && o.node == nil && !o.busy
}

// write sends results, heartbeats and the drain notice; it flushes when
// nothing more is pending (or at least every millisecond under a steady
// trickle), so a busy pool sends few large writes and a quiet one answers
// at once.
func (p *pool) write(stop <-chan struct{}) error {
	o := &p.out
	var (
		spare        []wire.Result
		spareSamples []wire.ResourceSample
	)
	for {
		select {
		case <-stop:
			return nil
		case <-o.wake:
		}
		lastFlush := time.Now()
		for {
			o.mu.Lock()
			batch := o.results
			o.results = spare
			hb, dr := o.heartbeat, o.drain
			node, samples := o.node, o.samples
			if len(batch) == 0 && !hb && !dr && node == nil && len(samples) == 0 {
				o.results = batch
				o.mu.Unlock()
				break
			}
			o.heartbeat, o.drain, o.node = false, false, nil
			o.samples = spareSamples
			o.busy = true
			o.mu.Unlock()
			// Samples go first: a task's end sample is queued before its
			// result and must not arrive after it.
			if err := p.writeMonitor(node, samples); err != nil {
				return err
			}
			clear(samples)
			spareSamples = samples[:0]
			if err := p.writeResults(batch); err != nil {
				return err
			}
			clear(batch)
			spare = batch[:0]
			if hb {
				if err := wire.WriteRaw(p.w, wire.THeartbeat, nil); err != nil {
					return err
				}
			}
			if dr {
				if err := wire.WriteRaw(p.w, wire.TDrain, nil); err != nil {
					return err
				}
			}
			if time.Since(lastFlush) > time.Millisecond {
				if err := p.w.Flush(); err != nil {
					return err
				}
				lastFlush = time.Now()
			}
		}
		err := p.w.Flush()
		o.mu.Lock()
		o.busy = false
		o.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// resultFrameBudget caps the payload of one results frame, so that a big
// batch goes out as several frames any interchange's reader accepts.
const resultFrameBudget = 1 << 20

// writeResults writes batch as one or more TResults frames.
func (p *pool) writeResults(batch []wire.Result) error {
	for len(batch) > 0 {
		n, size := 0, 0
		for n < len(batch) && (n == 0 || size+resultSize(&batch[n]) <= resultFrameBudget) {
			size += resultSize(&batch[n])
			n++
		}
		if err := wire.WriteFrame(p.w, wire.TResults, wire.Results{Results: batch[:n]}); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}

// writeMonitor writes the node's description and samples as TMonitor
// frames.
func (p *pool) writeMonitor(node *wire.NodeInfo, samples []wire.ResourceSample) error {
	for node != nil || len(samples) > 0 {
		n := min(len(samples), samplesPerFrame)
		if err := wire.WriteFrame(p.w, wire.TMonitor, wire.Monitor{Node: node, Resources: samples[:n]}); err != nil {
			return err
		}
		node, samples = nil, samples[n:]
	}
	return nil
}

// resultSize estimates the encoded size of r.
func resultSize(r *wire.Result) int {
	n := 24 + len(r.Result)
	if e := r.Err; e != nil {
		n += 32 + len(e.Type) + len(e.Message) + len(e.Stack)
		for _, p := range e.Paths {
			n += len(p) + 2
		}
	}
	return n
}
