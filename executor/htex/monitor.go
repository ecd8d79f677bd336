package htex

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/monitoring/store"
	"github.com/parsl-go/parsl/provider"
)

// Monitor receives what the executor learns about its blocks, its pools'
// nodes and its tasks' resource use, as rows of Parsl's monitoring tables.
// The executor leaves RunID empty: the monitor knows its run.
// *monitoring.Hub implements it; parsl.Load hands the run's hub to every
// executor that has SetMonitor.
//
// The executor calls it from a goroutine of its own, one row at a time,
// never from its task paths: a method may block while the monitor's
// storage is busy, until ctx ends. Rows the monitor refuses (an error)
// or that wait too long in the executor's queue are dropped and counted
// (Executor.MonitorDropped).
type Monitor interface {
	// Block records a block's change of state ("PENDING", "RUNNING",
	// "SCALED_IN", "FAILED", ... as Parsl's JobState names).
	Block(ctx context.Context, b store.Block) error
	// Node records a pool (worker manager) joining (Active) or leaving.
	Node(ctx context.Context, n store.Node) error
	// Resource records one resource sample of a running try.
	Resource(ctx context.Context, r store.Resource) error
}

// DefaultResourceInterval is how often pools sample running tasks when
// Options.ResourceInterval is zero.
const DefaultResourceInterval = 5 * time.Second

// ResourceStartEnd, as Options.ResourceInterval, samples each task only
// when it starts and when it ends (Parsl's resource_monitoring_interval
// of 0).
const ResourceStartEnd time.Duration = -1

// maxMonitorQueue bounds the rows waiting for the monitor; beyond it rows
// are dropped so that a slow database never holds up tasks.
const maxMonitorQueue = 1 << 17

// SetMonitor makes the executor report blocks, nodes and resource samples
// to m (nil: none, the default). It must be called before Start; later
// calls are ignored with a warning.
func (e *Executor) SetMonitor(m Monitor) {
	e.life.Lock()
	defer e.life.Unlock()
	if e.started {
		if e.log != nil {
			e.log.Warn("htex: SetMonitor after Start is ignored", "label", e.opts.Label)
		}
		return
	}
	e.mon = m
}

// MonitorDropped returns how many monitoring rows were dropped: refused
// by the monitor, or beyond the queue's bound while the monitor was slow.
// Samples a pool drops because its connection is slow are counted in the
// pool's log.
func (e *Executor) MonitorDropped() int64 {
	if e.pump == nil {
		return 0
	}
	return e.pump.dropped.Load()
}

// resourceInterval is what pools are told: 0 for start and end only.
func (e *Executor) resourceInterval() time.Duration {
	switch iv := e.opts.ResourceInterval; {
	case iv == 0:
		return DefaultResourceInterval
	case iv < 0:
		return 0
	default:
		return iv
	}
}

// monPump moves rows from the executor's goroutines to the Monitor on a
// goroutine of its own, so that the monitor's speed never reaches the
// interchange's readers or the scaling loop.
type monPump struct {
	m       Monitor
	mu      sync.Mutex
	q       []store.Record
	closing bool
	wake    chan struct{}
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	dropped atomic.Int64
}

func startPump(m Monitor) *monPump {
	p := &monPump{m: m, wake: make(chan struct{}, 1), done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.run()
	return p
}

// put queues rows without blocking; rows beyond the bound are dropped.
func (p *monPump) put(recs ...store.Record) {
	p.mu.Lock()
	if p.closing || len(p.q)+len(recs) > maxMonitorQueue {
		p.mu.Unlock()
		p.dropped.Add(int64(len(recs)))
		return
	}
	p.q = append(p.q, recs...)
	first := len(p.q) == len(recs)
	p.mu.Unlock()
	if first {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func (p *monPump) run() {
	defer close(p.done)
	var spare []store.Record
	for {
		p.mu.Lock()
		batch, closing := p.q, p.closing
		p.q = spare
		p.mu.Unlock()
		if len(batch) == 0 {
			if closing {
				return
			}
			<-p.wake
			spare = batch
			continue
		}
		for i, r := range batch {
			if err := p.send(r); err != nil {
				p.dropped.Add(1)
			}
			batch[i] = nil
		}
		spare = batch[:0]
	}
}

func (p *monPump) send(r store.Record) error {
	if p.ctx.Err() != nil {
		return p.ctx.Err()
	}
	switch r := r.(type) {
	case *store.Block:
		return p.m.Block(p.ctx, *r)
	case *store.Node:
		return p.m.Node(p.ctx, *r)
	case *store.Resource:
		return p.m.Resource(p.ctx, *r)
	}
	return errors.New("htex: unknown monitoring row")
}

// close writes the queued rows until ctx ends, then drops the rest, and
// waits for the pump's goroutine.
func (p *monPump) close(ctx context.Context) {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel() // the remaining sends fail at once and are counted
		<-p.done
	}
	p.cancel()
}

// monitorBlock records that block id (job, "" when it never got one) is
// now in state. Repeats of the state last recorded are not recorded, nor
// is anything after a terminal state, nor PENDING after RUNNING (a
// provider's poll can lag behind the pool that has joined).
func (e *Executor) monitorBlock(id, job string, state provider.JobState) {
	if e.pump == nil {
		return
	}
	e.mu.Lock()
	last, ok := e.blockStates[id]
	if ok && (last == state || last.Terminal() || (last == provider.Running && state == provider.Pending)) {
		e.mu.Unlock()
		return
	}
	e.blockStates[id] = state
	e.mu.Unlock()
	e.pump.put(&store.Block{ExecutorLabel: e.opts.Label, BlockID: id, JobID: job, Timestamp: time.Now(), Status: state.String()})
}

// closeMonitor records every block's end and writes the queued rows
// (for at most 10 s), then stops the pump. Parsl scales every block in
// at shutdown, so a block's last row is SCALED_IN unless the provider
// reported another end first.
func (e *Executor) closeMonitor(ctx context.Context) {
	type blockJob struct{ id, job string }
	e.mu.Lock()
	bs := make([]blockJob, 0, len(e.order))
	for _, id := range e.order {
		bs = append(bs, blockJob{id, e.blocks[id].job})
	}
	e.mu.Unlock()
	for _, b := range bs {
		e.monitorBlock(b.id, b.job, provider.ScaledIn)
	}
	// Pools whose leaving was not seen (a standalone interchange stops
	// reporting once told to shut down) are gone too.
	e.mu.Lock()
	left := make([]nodeEntry, 0, len(e.nodes))
	for id, n := range e.nodes {
		left = append(left, n)
		delete(e.nodes, id)
	}
	e.mu.Unlock()
	now := time.Now()
	for _, n := range left {
		e.pump.put(nodeRow(n.info, &n.node, false, now))
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e.pump.close(pctx)
	if n := e.pump.dropped.Load(); n > 0 {
		e.log.Warn("htex: monitoring rows dropped: the monitor was too slow or refused them", "rows", n)
	}
}

// nodeEntry is what the executor keeps of a connected manager that sent
// its node's description, to record the node again when it leaves.
type nodeEntry struct {
	info interchange.ManagerInfo
	node wire.NodeInfo
}

// nodeRow is a pool's node row.
func nodeRow(m interchange.ManagerInfo, n *wire.NodeInfo, active bool, now time.Time) *store.Node {
	return &store.Node{Hostname: m.Hostname, UID: m.Name, BlockID: m.BlockID, CPUCount: int64(n.CPUs),
		TotalMemory: n.MemoryBytes, Active: active, WorkerCount: int64(m.Workers), PythonV: n.Runtime,
		Timestamp: now, LastHeartbeat: now}
}

// onMonitor is the interchange's monitoring callback.
func (e *Executor) onMonitor(m interchange.ManagerInfo, msg *wire.Monitor) {
	if e.pump == nil {
		return
	}
	recs := make([]store.Record, 0, len(msg.Resources)+1)
	if n := msg.Node; n != nil {
		e.mu.Lock()
		e.nodes[m.ID] = nodeEntry{m, *n}
		e.mu.Unlock()
		recs = append(recs, nodeRow(m, n, true, time.Now()))
	}
	for i := range msg.Resources {
		s := &msg.Resources[i]
		r := &store.Resource{
			TaskID: s.TaskID, TryID: int64(s.Try), Timestamp: time.Unix(0, s.Time),
			MonitoringInterval: s.Interval.Seconds(), PID: int64(s.PID), MemoryPercent: s.MemoryPercent,
			ChildrenCount: float64(max(s.Processes-1, 0)), TimeUser: s.UserSeconds, TimeSystem: s.SystemSeconds,
			MemoryVirtual: float64(s.VMS), MemoryResident: float64(s.RSS),
			ProcessStatus: s.Status, CPUNum: strconv.Itoa(s.CPU),
			NumCtxSwitchesVoluntary: float64(s.CtxVoluntary), NumCtxSwitchesInvoluntary: float64(s.CtxInvoluntary),
		}
		if s.IOKnown {
			r.DiskRead, r.DiskWrite = float64(s.ReadBytes), float64(s.WriteBytes)
		}
		recs = append(recs, r)
	}
	e.pump.put(recs...)
}

// monitorManager records a manager joining or leaving: its node row, and
// its block running.
func (e *Executor) monitorManager(m interchange.ManagerInfo, gone bool) {
	if e.pump == nil {
		return
	}
	e.mu.Lock()
	n, ok := e.nodes[m.ID]
	if gone {
		delete(e.nodes, m.ID)
	}
	var job string
	b := e.blocks[m.BlockID]
	if b != nil {
		job = b.job
	}
	e.mu.Unlock()
	if gone {
		if ok {
			e.pump.put(nodeRow(m, &n.node, false, time.Now()))
		}
		return
	}
	if b != nil {
		// A pool of the block has joined: it runs, whatever the
		// provider's next poll will say.
		e.monitorBlock(m.BlockID, job, provider.Running)
	}
}
