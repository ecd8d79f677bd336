// Package interchange is the broker between the high-throughput executor
// and its worker pools. It runs as goroutines in the driver: it listens for
// pools (TLS by default), checks each one with the wire handshake, keeps a
// priority queue of tasks, hands tasks only to managers with free capacity
// (workers + prefetch), batches many tasks per frame, answers heartbeats,
// fails the tasks of lost managers with a retryable error, and lets draining
// pools finish before telling them to exit.
//
// Every goroutine it starts is owned by the Interchange and waited for by
// Close: one accept loop, one monitor, one guard ticker (see guard.go),
// and per connection a reader (which first runs the handshake) and a
// writer.
package interchange

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parsl-go/parsl/internal/wire"
)

// Options configures an Interchange. Zero fields take the defaults.
type Options struct {
	// Address is the host:port to listen on; default "127.0.0.1:0".
	// Listening on all interfaces must be asked for explicitly.
	Address string
	// TLS, when set, is the server configuration; nil means plain TCP.
	TLS *tls.Config
	// Secret is the run's HMAC secret; pools must prove they know it.
	Secret []byte
	// Expect is the build and registry digest pools must match.
	Expect wire.Expect
	// HeartbeatPeriod is how often the interchange sends heartbeats to
	// pools, and is told to pools in the welcome; default 30 s.
	HeartbeatPeriod time.Duration
	// HeartbeatThreshold is the silence after which a manager is lost;
	// default 120 s.
	HeartbeatThreshold time.Duration
	// HandshakeTimeout bounds the TLS and wire handshakes of a new
	// connection; default 1 s.
	HandshakeTimeout time.Duration
	// MaxFrame is the largest frame accepted from a pool; default
	// wire.DefaultMaxFrame.
	MaxFrame int
	// Logger gets connection events; default discards.
	Logger *slog.Logger

	// Deliver receives results from pools, and the failures the
	// interchange makes itself (wire.ErrManagerLost) for tasks of lost
	// managers. It is called from interchange goroutines with no lock held;
	// it may call Enqueue. Required.
	Deliver func(results []wire.Result, from ManagerInfo)
	// OnRefused is told about every pool refused by the handshake.
	OnRefused func(Refusal)
	// OnManager is told when a manager registers (Gone false) and when it
	// is removed (Gone true).
	OnManager func(m ManagerInfo, gone bool, reason string)
	// OnMonitor, when set, receives the monitoring messages of pools (node
	// description, resource samples); the welcome then tells pools that
	// they may send them. It is called from the manager's reader goroutine
	// with no lock held, after the results that pool sent before it, and
	// must not block for long: that pool's results wait meanwhile.
	OnMonitor func(m ManagerInfo, msg *wire.Monitor)
}

// ManagerInfo describes a connected (or just removed) manager.
type ManagerInfo struct {
	// ID is unique within this interchange; Name is the pool's own id.
	ID       string
	Name     string
	Hostname string
	BlockID  string
	Workers  int
	Prefetch int
	Generic  bool
	// InFlight is the number of tasks given and not yet answered.
	InFlight int
	Draining bool
	// IdleSince is when the manager last had no task in flight (since it
	// registered, or since its last result); zero while it has tasks.
	// Scaling removes blocks idle for long enough.
	IdleSince time.Time
	// Deadline is when the manager's block ends, from its Hello (zero =
	// unknown).
	Deadline time.Time
}

// Refusal is a pool turned away by the handshake.
type Refusal struct {
	Remote string
	// Auth is true when the pool did not prove it knows the secret; such a
	// peer's Hello fields are untrusted.
	Auth     bool
	Manager  string
	Hostname string
	BlockID  string
	Reason   string
}

// Interchange brokers tasks between the executor and worker pools. Create
// it with New.
type Interchange struct {
	opts Options
	log  *slog.Logger
	ln   net.Listener

	mu       sync.Mutex
	q        queue
	mgrs     []*manager
	rr       int
	qgen     uint64        // bumped by every Enqueue
	closing  bool          // Close started: drops no longer fail tasks
	stopping bool          // Shutdown started: new managers are told to exit
	allGone  chan struct{} // closed when stopping and no manager is left

	wg   sync.WaitGroup
	quit chan struct{}

	conns   sync.Map // net.Conn → struct{}: handshaking connections, closed by Close
	counter atomic.Int64
	guard   *guard // per-source handshake limit and failure log
}

type manager struct {
	info  ManagerInfo
	conn  net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	cap   int
	dead  time.Time // block end (zero = unknown)
	heard atomic.Int64

	// Guarded by Interchange.mu.
	inflight map[int64]int // task ID → try
	out      [][]byte      // encoded tasks for the writer
	hb       bool          // a heartbeat is due
	idleGen  uint64        // Interchange.qgen when a scan found nothing more to take
	shutdown bool          // TShutdown is due
	removed  bool
	idle     time.Time // when inflight last became empty; zero while busy

	wake chan struct{} // cap 1: the writer has work
	quit chan struct{} // closed when the manager is removed
}

// New listens and starts serving pools.
func New(opts Options) (*Interchange, error) {
	if opts.Deliver == nil {
		return nil, errors.New("interchange: Options.Deliver is required")
	}
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	if opts.HeartbeatPeriod <= 0 {
		opts.HeartbeatPeriod = 30 * time.Second
	}
	if opts.HeartbeatThreshold <= 0 {
		opts.HeartbeatThreshold = 120 * time.Second
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = time.Second
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = wire.DefaultMaxFrame
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.Secret) == 0 {
		return nil, errors.New("interchange: Options.Secret is empty; every run needs a secret so that only its pools get tasks")
	}
	ln, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("interchange: listening on %s: %w (set the executor's Address to a local interface)", opts.Address, err)
	}
	ix := &Interchange{opts: opts, log: opts.Logger, ln: ln, quit: make(chan struct{}), guard: newGuard(opts.Logger)}
	ix.wg.Add(2)
	go ix.acceptLoop()
	go ix.monitor()
	ix.wg.Add(1)
	go ix.guardLoop()
	return ix, nil
}

// Addr returns the address pools connect to.
func (ix *Interchange) Addr() net.Addr { return ix.ln.Addr() }

// Enqueue queues tasks and hands them to managers with free capacity.
func (ix *Interchange) Enqueue(items ...Item) {
	ix.mu.Lock()
	ix.qgen++
	for _, it := range items {
		ix.q.push(it)
	}
	woken := ix.dispatchLocked(nil)
	ix.mu.Unlock()
	wakeAll(woken)
}

// Purge removes and returns every queued task (not those given to
// managers).
func (ix *Interchange) Purge() []Item {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.q.drain()
}

// Queued returns the number of tasks waiting for a manager.
func (ix *Interchange) Queued() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.q.Len()
}

// Managers returns the connected managers.
func (ix *Interchange) Managers() []ManagerInfo {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]ManagerInfo, len(ix.mgrs))
	for i, m := range ix.mgrs {
		out[i] = m.snapshot()
	}
	return out
}

// snapshot needs Interchange.mu.
func (m *manager) snapshot() ManagerInfo {
	i := m.info
	i.InFlight = len(m.inflight)
	i.IdleSince = m.idle
	i.Deadline = m.dead
	return i
}

func wakeAll(ms []*manager) {
	for _, m := range ms {
		m.poke()
	}
}

func (m *manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// dispatchLocked hands queued tasks to managers with free capacity and
// returns the managers that got work (appended to woken). Managers are
// visited from a rotating start so that no pool is always served first.
func (ix *Interchange) dispatchLocked(woken []*manager) []*manager {
	n := len(ix.mgrs)
	if n == 0 || ix.q.Len() == 0 {
		return woken
	}
	start := ix.rr
	ix.rr++
	for k := 0; k < n && ix.q.Len() > 0; k++ {
		m := ix.mgrs[(start+k)%n]
		if m.removed || m.shutdown || m.info.Draining {
			continue
		}
		free := m.cap - len(m.inflight)
		if free <= 0 {
			continue
		}
		if ix.fillLocked(m, free) > 0 {
			woken = append(woken, m)
		}
	}
	return woken
}

// maxScan bounds how many queued tasks a constrained manager (generic, or
// with little walltime left) looks at per dispatch, so that a long queue
// of tasks it cannot take does not make every dispatch slow.
const maxScan = 4096

func (ix *Interchange) fillLocked(m *manager, free int) int {
	took := 0
	if !m.info.Generic && m.dead.IsZero() {
		for took < free && ix.q.Len() > 0 {
			it := ix.q.pop()
			m.take(&it)
			took++
		}
		return took
	}
	if m.idleGen == ix.qgen {
		// A scan since the last Enqueue found nothing more this manager can
		// take, and eligibility only shrinks as its block's time runs out.
		return 0
	}
	var skipped []Item
	now := time.Now()
	scanned := 0
	for ; took < free && ix.q.Len() > 0 && scanned < maxScan; scanned++ {
		it := ix.q.pop()
		if (m.info.Generic && !it.Bash) || (!m.dead.IsZero() && it.Walltime > 0 && now.Add(it.Walltime).After(m.dead)) {
			skipped = append(skipped, it)
			continue
		}
		m.take(&it)
		took++
	}
	for _, it := range skipped {
		ix.q.push(it)
	}
	if took < free && scanned < maxScan {
		m.idleGen = ix.qgen // the whole queue was seen
	}
	return took
}

func (m *manager) take(it *Item) {
	m.inflight[it.ID] = it.Try
	m.idle = time.Time{}
	m.out = append(m.out, it.Payload)
}

func (ix *Interchange) acceptLoop() {
	defer ix.wg.Done()
	var delay time.Duration
	for {
		c, err := ix.ln.Accept()
		if err != nil {
			select {
			case <-ix.quit:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of file descriptors or similar: back off instead of
				// spinning, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				ix.log.Warn("interchange: accept failed; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-ix.quit:
					return
				}
				continue
			}
			ix.log.Error("interchange: accept failed; no more pools can connect", "err", err)
			return
		}
		delay = 0
		if ix.opts.TLS != nil && !ix.guard.admit(source(c.RemoteAddr()), time.Now()) {
			// Closed before the TLS handshake costs anything; a reset
			// leaves no TIME_WAIT here, and a pool that gets it retries.
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		ix.wg.Add(1)
		go ix.serve(c)
	}
}

// guardLoop writes the guard's periodic failure counts, and the last
// ones at Close.
func (ix *Interchange) guardLoop() {
	defer ix.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ix.quit:
			ix.guard.tick(time.Now(), true)
			return
		case now := <-t.C:
			ix.guard.tick(now, false)
		}
	}
}

// serve runs the handshake and then reads from the manager until the
// connection ends.
func (ix *Interchange) serve(c net.Conn) {
	defer ix.wg.Done()
	ix.conns.Store(c, struct{}{})
	defer ix.conns.Delete(c)
	select {
	case <-ix.quit:
		c.Close()
		return
	default:
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	remote := c.RemoteAddr().String()
	src := source(c.RemoteAddr())
	_ = c.SetDeadline(time.Now().Add(ix.opts.HandshakeTimeout))
	conn := c
	if ix.opts.TLS != nil {
		tc := tls.Server(c, ix.opts.TLS)
		if err := tc.Handshake(); err != nil {
			ix.guard.failed(src, "TLS handshake failed: "+err.Error(), time.Now())
			c.Close()
			return
		}
		conn = tc
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	w := bufio.NewWriterSize(conn, 64<<10)
	hello, err := wire.ServerHandshake(r, w, ix.opts.Secret, ix.opts.Expect, wire.Welcome{
		HeartbeatPeriod: ix.opts.HeartbeatPeriod, HeartbeatThreshold: ix.opts.HeartbeatThreshold,
		Monitor: ix.opts.OnMonitor != nil})
	if err != nil {
		var re *wire.RefusedError
		if errors.As(err, &re) {
			auth := re.Reason == "authentication failed: the pool does not know this run's secret"
			if auth {
				ix.guard.failed(src, re.Reason, time.Now())
			} else {
				ix.guard.authenticated(src)
				ix.log.Warn("interchange: pool refused", "remote", remote, "reason", re.Reason)
			}
			if ix.opts.OnRefused != nil {
				rf := Refusal{Remote: remote, Auth: auth, Reason: re.Reason}
				if !auth {
					rf.Manager, rf.Hostname, rf.BlockID = hello.Manager, hello.Hostname, hello.BlockID
				}
				ix.opts.OnRefused(rf)
			}
		} else {
			ix.guard.failed(src, "handshake failed: "+err.Error(), time.Now())
		}
		conn.Close()
		return
	}
	ix.guard.authenticated(src)
	_ = c.SetDeadline(time.Time{})

	m := &manager{
		conn: conn, r: r, w: w,
		inflight: map[int64]int{},
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
	}
	m.info = ManagerInfo{
		ID: strconv.FormatInt(ix.counter.Add(1), 10), Name: hello.Manager, Hostname: hello.Hostname,
		BlockID: hello.BlockID, Workers: max(hello.Workers, 1), Prefetch: max(hello.Prefetch, 0), Generic: hello.Generic,
	}
	m.cap = m.info.Workers + m.info.Prefetch
	if hello.WalltimeLeft > 0 {
		m.dead = time.Now().Add(hello.WalltimeLeft)
	}
	m.heard.Store(time.Now().UnixNano())
	m.idle = time.Now()

	ix.mu.Lock()
	if ix.closing {
		ix.mu.Unlock()
		conn.Close()
		return
	}
	ix.mgrs = append(ix.mgrs, m)
	if ix.stopping {
		m.shutdown = true
	}
	woken := ix.dispatchLocked(nil)
	ix.mu.Unlock()
	ix.log.Info("interchange: manager registered", "manager", m.info.Name, "host", m.info.Hostname,
		"block", m.info.BlockID, "workers", m.info.Workers, "prefetch", m.info.Prefetch, "generic", m.info.Generic, "remote", remote)
	if ix.opts.OnManager != nil {
		ix.opts.OnManager(m.info, false, "")
	}
	ix.wg.Add(1)
	go ix.writer(m)
	m.poke()
	wakeAll(woken)
	ix.conns.Delete(c) // from here the manager owns the connection
	ix.read(m)
}

// read handles frames from a manager until the connection fails.
func (ix *Interchange) read(m *manager) {
	for {
		t, p, err := wire.ReadFrame(m.r, ix.opts.MaxFrame)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				ix.drop(m, "the pool closed the connection")
			default:
				var fe *wire.FrameError
				if errors.As(err, &fe) {
					ix.log.Error("interchange: bad frame from manager; dropping it", "manager", m.info.Name, "err", err)
				}
				ix.drop(m, "connection lost: "+err.Error())
			}
			return
		}
		m.heard.Store(time.Now().UnixNano())
		switch t {
		case wire.TResults:
			var rs wire.Results
			if err := wire.Decode(t, p, &rs); err != nil {
				ix.log.Error("interchange: malformed results from manager; dropping it", "manager", m.info.Name, "err", err)
				ix.drop(m, "sent a malformed results frame: "+err.Error())
				return
			}
			ix.results(m, rs.Results)
		case wire.THeartbeat:
			ix.mu.Lock()
			m.hb = true
			ix.mu.Unlock()
			m.poke()
		case wire.TMonitor:
			if ix.opts.OnMonitor == nil {
				// Not asked for (the welcome said so); a pool that sends
				// it anyway loses nothing but its samples.
				continue
			}
			var mon wire.Monitor
			if err := wire.Decode(t, p, &mon); err != nil {
				ix.log.Error("interchange: malformed monitoring message from manager; dropping it", "manager", m.info.Name, "err", err)
				ix.drop(m, "sent a malformed monitoring frame: "+err.Error())
				return
			}
			ix.mu.Lock()
			info := m.snapshot()
			ix.mu.Unlock()
			ix.opts.OnMonitor(info, &mon)
		case wire.TDrain:
			ix.mu.Lock()
			m.info.Draining = true
			if len(m.inflight) == 0 {
				m.shutdown = true
			}
			ix.mu.Unlock()
			ix.log.Info("interchange: manager draining", "manager", m.info.Name)
			m.poke()
		default:
			ix.log.Error("interchange: unexpected frame from manager; dropping it", "manager", m.info.Name, "type", t.String())
			ix.drop(m, "sent an unexpected "+t.String()+" frame")
			return
		}
	}
}

func (ix *Interchange) results(m *manager, rs []wire.Result) {
	ix.mu.Lock()
	valid := rs[:0]
	stale := 0
	for _, r := range rs {
		if try, ok := m.inflight[r.ID]; ok && try == r.Try {
			delete(m.inflight, r.ID)
			valid = append(valid, r)
		} else {
			stale++
		}
	}
	if len(m.inflight) == 0 && len(valid) > 0 {
		m.idle = time.Now()
	}
	if m.info.Draining && len(m.inflight) == 0 && !m.shutdown {
		m.shutdown = true
		m.poke()
	}
	woken := ix.dispatchLocked(nil)
	info := m.info
	ix.mu.Unlock()
	wakeAll(woken)
	if stale > 0 {
		ix.log.Warn("interchange: results for tasks this manager does not hold were ignored", "manager", info.Name, "count", stale)
	}
	if len(valid) > 0 {
		ix.opts.Deliver(valid, info)
	}
}

// frameBudget caps the payload of one tasks frame, so that a big backlog
// goes out as several frames a pool's reader accepts.
const frameBudget = 1 << 20

// writer sends tasks, heartbeats and the shutdown to a manager. It takes
// everything pending at once and flushes only when nothing more is pending,
// so that a busy manager gets many tasks per frame and per TLS record.
func (ix *Interchange) writer(m *manager) {
	defer ix.wg.Done()
	var (
		buf   []byte
		spare [][]byte
	)
	for {
		select {
		case <-m.wake:
		case <-m.quit:
			return
		}
		wrote := false
		for {
			ix.mu.Lock()
			out, hb, sd := m.out, m.hb, m.shutdown && !m.removed
			m.out, m.hb = spare[:0], false
			ix.mu.Unlock()
			if len(out) == 0 && !hb && !sd {
				spare = out // the slice just handed to m.out must not be reused
				break
			}
			wrote = true
			var err error
			for rest := out; len(rest) > 0 && err == nil; {
				n, size := 0, 0
				for n < len(rest) && (n == 0 || size+len(rest[n]) <= frameBudget) {
					size += len(rest[n])
					n++
				}
				buf = appendTasksPayload(buf[:0], rest[:n])
				err = wire.WriteRaw(m.w, wire.TTasks, buf)
				rest = rest[n:]
			}
			clear(out) // release the payloads
			spare = out[:0]
			if hb && err == nil {
				err = wire.WriteRaw(m.w, wire.THeartbeat, nil)
			}
			if sd && err == nil {
				err = wire.WriteRaw(m.w, wire.TShutdown, nil)
				if err == nil {
					err = m.w.Flush()
				}
				if err == nil {
					// Nothing more goes to a pool told to exit; the reader
					// sees it close the connection.
					<-m.quit
					return
				}
			}
			if err != nil {
				ix.drop(m, "write failed: "+err.Error())
				return
			}
			if cap(buf) > 4*frameBudget {
				buf = nil
			}
		}
		if wrote {
			if err := m.w.Flush(); err != nil {
				ix.drop(m, "write failed: "+err.Error())
				return
			}
		}
	}
}

// appendTasksPayload appends the CBOR of wire.Tasks{Tasks: tasks} built
// from already encoded tasks: a one-entry map {"t": [task...]}.
func appendTasksPayload(b []byte, tasks [][]byte) []byte {
	b = append(b, 0xa1, 0x61, 't')
	n := uint64(len(tasks))
	switch {
	case n < 24:
		b = append(b, 0x80|byte(n))
	case n <= 0xff:
		b = append(b, 0x98, byte(n))
	case n <= 0xffff:
		b = append(b, 0x99, byte(n>>8), byte(n))
	default:
		b = append(b, 0x9a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	for _, t := range tasks {
		b = append(b, t...)
	}
	return b
}

// drop removes a manager, closes its connection and fails its tasks with
// wire.ErrManagerLost (retryable), unless the interchange is closing.
func (ix *Interchange) drop(m *manager, reason string) {
	ix.mu.Lock()
	if m.removed {
		ix.mu.Unlock()
		return
	}
	m.removed = true
	for i, x := range ix.mgrs {
		if x == m {
			ix.mgrs = append(ix.mgrs[:i], ix.mgrs[i+1:]...)
			break
		}
	}
	lost := make([]wire.Result, 0, len(m.inflight))
	for id, try := range m.inflight {
		lost = append(lost, wire.Result{ID: id, Try: try, Err: &wire.Error{Kind: wire.ErrManagerLost, Message: reason}})
	}
	m.inflight, m.out = nil, nil
	closing := ix.closing
	info := m.info
	if ix.stopping && len(ix.mgrs) == 0 && ix.allGone != nil {
		close(ix.allGone)
		ix.allGone = nil
	}
	ix.mu.Unlock()
	close(m.quit)
	m.conn.Close()
	if len(lost) > 0 {
		ix.log.Warn("interchange: manager lost with tasks in flight", "manager", info.Name, "host", info.Hostname, "tasks", len(lost), "reason", reason)
	} else {
		ix.log.Info("interchange: manager left", "manager", info.Name, "reason", reason)
	}
	if ix.opts.OnManager != nil {
		ix.opts.OnManager(info, true, reason)
	}
	if len(lost) > 0 && !closing {
		ix.opts.Deliver(lost, info)
	}
}

// monitor expires silent managers and sends heartbeats.
func (ix *Interchange) monitor() {
	defer ix.wg.Done()
	tick := min(ix.opts.HeartbeatPeriod, ix.opts.HeartbeatThreshold/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastHB := time.Now()
	for {
		select {
		case <-ix.quit:
			return
		case <-t.C:
		}
		now := time.Now()
		sendHB := now.Sub(lastHB) >= ix.opts.HeartbeatPeriod
		if sendHB {
			lastHB = now
		}
		var expired, poked []*manager
		ix.mu.Lock()
		for _, m := range ix.mgrs {
			if now.Sub(time.Unix(0, m.heard.Load())) > ix.opts.HeartbeatThreshold {
				expired = append(expired, m)
			} else if sendHB {
				m.hb = true
				poked = append(poked, m)
			}
		}
		ix.mu.Unlock()
		wakeAll(poked)
		for _, m := range expired {
			ix.drop(m, fmt.Sprintf("no heartbeat for %s (heartbeat threshold)", ix.opts.HeartbeatThreshold))
		}
	}
}

// DrainBlock stops giving tasks to the managers of a block being scaled
// in and tells those with nothing in flight to exit; the others exit when
// their last result arrives. It returns how many managers it drained.
func (ix *Interchange) DrainBlock(blockID string) int {
	ix.mu.Lock()
	var ms []*manager
	for _, m := range ix.mgrs {
		if m.info.BlockID != blockID || m.removed {
			continue
		}
		m.info.Draining = true
		if len(m.inflight) == 0 {
			m.shutdown = true
		}
		ms = append(ms, m)
	}
	ix.mu.Unlock()
	wakeAll(ms)
	return len(ms)
}

// Shutdown tells every manager to exit, refuses new ones, and waits until
// all have disconnected or ctx ends. Tasks still in flight are not failed
// here; Close does not fail them either: the executor owns them.
func (ix *Interchange) Shutdown(ctx context.Context) error {
	ix.mu.Lock()
	ix.stopping = true
	var gone chan struct{}
	if len(ix.mgrs) > 0 {
		gone = make(chan struct{})
		ix.allGone = gone
	}
	ms := append([]*manager(nil), ix.mgrs...)
	for _, m := range ms {
		m.shutdown = true
	}
	ix.mu.Unlock()
	wakeAll(ms)
	if gone == nil {
		return nil
	}
	select {
	case <-gone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("interchange: pools did not disconnect after the shutdown message: %w", ctx.Err())
	}
}

// Close stops listening, closes every connection and waits for every
// goroutine of the interchange. Tasks in flight are not reported: the
// executor fails what it still holds.
func (ix *Interchange) Close() error {
	ix.mu.Lock()
	if ix.closing {
		ix.mu.Unlock()
		return nil
	}
	ix.closing = true
	ms := append([]*manager(nil), ix.mgrs...)
	ix.mu.Unlock()
	close(ix.quit)
	err := ix.ln.Close()
	ix.conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	for _, m := range ms {
		ix.drop(m, "the interchange is closing")
	}
	ix.wg.Wait()
	return err
}
