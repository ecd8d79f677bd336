package workerpool

import (
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parsl-go/parsl/internal/procstat"
	"github.com/parsl-go/parsl/internal/wire"
)

// Resource monitoring. With PoolConfig.Monitor set (and an interchange
// that accepts it) the pool reports its node once and samples each running
// task from /proc:
//
//   - A bash task is the process tree of its command: the shell the worker
//     started (found among the pool's children by the PARSL_WORKER_RANK
//     of its environment) and every descendant of it. Descendants that
//     leave the tree (daemons reparented to init) are not counted. A
//     command that ends within a few tens of milliseconds may end before
//     the pool finds it, and then has no sample.
//   - A Go task is a goroutine of the pool, which /proc cannot tell apart:
//     its samples are those of the whole pool process (marked Pool), the
//     same for every Go task running at the time.
//
// Samples are sent when a task starts, every MonitorInterval while it
// runs, and when it ends; with MonitorInterval 0 only at the start and the
// end. The end sample of a bash task is the last one read while its
// processes were alive (the pool cannot read a process after the worker
// has reaped it); without an interval the pool reads them every second
// for it.
//
// A Go task shorter than selfMaxAge sends no sample: its numbers would be
// the pool's, identical for every such task, and at tens of thousands of
// tasks a second the rows would cost more than the tasks (the pool's
// readings still reach the database through the longer tasks). The start
// reading of a Go task is one up to selfMaxAge old, taken at its start
// and sent once the task has lasted selfMaxAge, so short tasks cost no
// /proc reads of their own.

const (
	// selfMaxAge is how long a reading of the pool process serves the
	// start and end samples of Go tasks.
	selfMaxAge = 10 * time.Millisecond
	// discoverEvery is how often the pool looks for the process of a
	// bash task it has not found yet.
	discoverEvery = 20 * time.Millisecond
	// observeEvery is how often bash tasks are read for their end sample
	// when MonitorInterval is 0.
	observeEvery = time.Second
	// maxPendingSamples bounds the samples waiting for the writer; more
	// are dropped (and counted) rather than growing without bound when
	// the interchange reads slowly.
	maxPendingSamples = 1 << 16
	// samplesPerFrame keeps a TMonitor frame far below any frame limit
	// (a sample encodes to about 120 bytes).
	samplesPerFrame = 2048
)

// sampler samples the resources of the pool's running tasks.
type sampler struct {
	log      *slog.Logger
	r        *procstat.Reader
	self     int
	manager  string
	interval time.Duration
	// off: the node's description only, no samples (negative interval).
	off      bool
	memTotal int64
	out      *outbox

	wake chan struct{} // a bash task started: look for its process soon

	mu    sync.Mutex
	slots []slot // one per worker: a worker runs one task at a time

	// A recent reading of the pool process, for Go tasks; selfMaxAge
	// also is the shortest Go task that gets samples.
	selfMu sync.Mutex
	selfAt time.Time
	selfS  wire.ResourceSample
	selfOK bool

	// notOurs remembers children of the pool that are no task's command,
	// by PID and start time, so their environment is read once.
	notOurs map[int]uint64
	// selfComm is the pool's own process name, which a child has until
	// it execs.
	selfComm string
}

// slot is the task a worker runs.
type slot struct {
	seq    uint64 // bumped by every begin, to detect a change of task
	active bool
	id     int64
	try    int
	bash   bool
	// For a bash task: its command's process once found (root, with its
	// start time against PID reuse), and the last reading of its tree.
	root      int
	rootStart uint64
	last      wire.ResourceSample
	haveLast  bool
	// For a Go task: when it started and the pool's reading then, sent
	// (firstSent) once the task has lasted selfMaxAge.
	started   time.Time
	first     wire.ResourceSample
	haveFirst bool
	firstSent bool
	sentAt    int64 // Time of the last sample sent for this try
}

func newSampler(log *slog.Logger, manager string, workers int, interval time.Duration, memMB float64, out *outbox) *sampler {
	s := &sampler{
		log: log, r: procstat.New(""), self: os.Getpid(), manager: manager, interval: max(interval, 0), off: interval < 0,
		out: out, wake: make(chan struct{}, 1), slots: make([]slot, workers), notOurs: map[int]uint64{},
	}
	if memMB > 0 {
		s.memTotal = int64(memMB * (1 << 20))
	} else if n, err := s.r.MemTotal(); err == nil {
		s.memTotal = n
	}
	return s
}

// node describes this node for the first TMonitor message.
func (s *sampler) node(cores float64) *wire.NodeInfo {
	cpus := runtime.NumCPU()
	if cores > 0 {
		cpus = int(cores)
	} else if c := nodeCores(); c > 0 {
		cpus = int(c)
	}
	return &wire.NodeInfo{CPUs: cpus, MemoryBytes: s.memTotal, Runtime: runtime.Version()}
}

// begin records that worker started t: a Go task with the pool's
// reading now, a bash task for the sampler to find.
func (s *sampler) begin(worker int, t *wire.Task) {
	bash := t.Command != ""
	if bash {
		s.mu.Lock()
		sl := &s.slots[worker]
		*sl = slot{seq: sl.seq + 1, active: true, id: t.ID, try: t.Try, bash: true}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	now := time.Now()
	smp, ok := s.selfSample(now)
	smp.TaskID, smp.Try = t.ID, t.Try
	s.mu.Lock()
	sl := &s.slots[worker]
	*sl = slot{seq: sl.seq + 1, active: true, id: t.ID, try: t.Try, started: now, first: smp, haveFirst: ok}
	s.mu.Unlock()
}

// end records that worker finished t and sends what is left to send of
// it: a bash task's last reading, a long enough Go task's start and end.
// It runs before the result is queued, so the samples reach the driver
// first.
func (s *sampler) end(worker int, t *wire.Task) {
	s.mu.Lock()
	sl := s.slots[worker]
	s.slots[worker].active = false
	s.mu.Unlock()
	if sl.bash {
		if sl.haveLast && sl.last.Time != sl.sentAt {
			s.out.putSamples(sl.last)
		}
		return
	}
	now := time.Now()
	if now.Sub(sl.started) < selfMaxAge {
		return
	}
	smp, ok := s.selfSample(now)
	smp.TaskID, smp.Try = t.ID, t.Try
	switch {
	case sl.haveFirst && !sl.firstSent && ok && smp.Time != sl.first.Time:
		s.out.putSamples(sl.first, smp)
	case sl.haveFirst && !sl.firstSent:
		s.out.putSamples(sl.first)
	case ok && smp.Time != sl.sentAt:
		s.out.putSamples(smp)
	}
}

// selfSample returns a reading of the pool process no older than
// selfMaxAge, reading /proc when the last one is older.
func (s *sampler) selfSample(now time.Time) (wire.ResourceSample, bool) {
	s.selfMu.Lock()
	defer s.selfMu.Unlock()
	if s.selfOK && now.Sub(s.selfAt) < selfMaxAge {
		return s.selfS, true
	}
	p, err := s.r.Process(s.self)
	if err != nil {
		s.selfOK = false
		return wire.ResourceSample{}, false
	}
	s.selfAt = time.Now()
	s.selfS = s.sample(s.r.Sum([]procstat.Process{p}), s.selfAt)
	s.selfS.Pool = true
	s.selfOK = true
	return s.selfS, true
}

func (s *sampler) sample(u procstat.Usage, at time.Time) wire.ResourceSample {
	smp := wire.ResourceSample{
		Time: at.UnixNano(), PID: u.PID, Processes: u.Processes, Threads: u.Threads,
		UserSeconds: u.UserSeconds, SystemSeconds: u.SystemSeconds, RSS: u.RSS, VMS: u.VMS,
		ReadBytes: u.ReadChars, WriteBytes: u.WriteChars, IOKnown: u.IOKnown,
		CtxVoluntary: u.CtxVoluntary, CtxInvoluntary: u.CtxInvoluntary,
		Status: statusName(u.State), CPU: u.CPU, Interval: s.interval,
	}
	if s.memTotal > 0 {
		smp.MemoryPercent = float64(u.RSS) * 100 / float64(s.memTotal)
	}
	return smp
}

// statusName is psutil's name of a process state letter, as Parsl stores
// it in psutil_process_status.
func statusName(c byte) string {
	switch c {
	case 'R':
		return "running"
	case 'S':
		return "sleeping"
	case 'D':
		return "disk-sleep"
	case 'T':
		return "stopped"
	case 't':
		return "tracing-stop"
	case 'Z':
		return "zombie"
	case 'X', 'x':
		return "dead"
	case 'K':
		return "wake-kill"
	case 'W':
		return "waking"
	case 'I':
		return "idle"
	case 'P':
		return "parked"
	case 0:
		return ""
	}
	return string(c)
}

// run samples until stop is closed.
func (s *sampler) run(stop <-chan struct{}) {
	period := s.interval
	if period <= 0 {
		period = observeEvery
	}
	next := time.Now().Add(period)
	timer := time.NewTimer(period)
	defer timer.Stop()
	for {
		wait := time.Until(next)
		if s.undiscovered() {
			wait = min(wait, discoverEvery)
		}
		timer.Reset(max(wait, 0))
		select {
		case <-stop:
			return
		case <-s.wake:
			// Let the worker start the command before looking for it.
			wait := time.NewTimer(discoverEvery / 4)
			select {
			case <-stop:
				wait.Stop()
				return
			case <-wait.C:
			}
		case <-timer.C:
		}
		now := time.Now()
		periodic := !now.Before(next)
		if periodic {
			next = now.Add(period)
		}
		s.tick(periodic)
	}
}

func (s *sampler) undiscovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.slots {
		if sl := &s.slots[i]; sl.active && sl.bash && sl.root == 0 {
			return true
		}
	}
	return false
}

// tick finds the processes of new bash tasks (and sends their start
// samples) and, when periodic, reads every running task.
func (s *sampler) tick(periodic bool) {
	s.mu.Lock()
	snap := append([]slot(nil), s.slots...)
	s.mu.Unlock()

	var found []int // workers whose bash task's process was just found
	for _, sl := range snap {
		if sl.active && sl.bash && sl.root == 0 {
			found = s.discover(snap)
			break
		}
	}
	// emit records a reading of worker w's task and sends it. The sample
	// is queued under s.mu, which end takes before the task's result is
	// queued: a sample of a running task never follows its result.
	emit := func(w int, smp wire.ResourceSample, send bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		sl := &s.slots[w]
		if sl.seq != snap[w].seq || !sl.active {
			return
		}
		if sl.bash {
			sl.last, sl.haveLast = smp, true
		}
		if !send {
			return
		}
		if !sl.bash && sl.haveFirst && !sl.firstSent {
			sl.firstSent = true
			if sl.first.Time != smp.Time {
				s.out.putSamples(sl.first)
			}
		}
		sl.sentAt = smp.Time
		s.out.putSamples(smp)
	}
	for _, w := range found {
		if smp, ok := s.readTree(w); ok {
			emit(w, smp, true)
		}
	}
	if periodic {
		var self wire.ResourceSample
		haveSelf := false
		for w, sl := range snap {
			if !sl.active || slices.Contains(found, w) {
				continue
			}
			if sl.bash {
				if sl.root == 0 {
					continue
				}
				if smp, ok := s.readTree(w); ok {
					emit(w, smp, s.interval > 0)
				}
				continue
			}
			if s.interval <= 0 || time.Since(sl.started) < selfMaxAge {
				continue // read at its start and end only, or too short yet
			}
			if !haveSelf {
				// One fresh reading serves every Go task of this tick.
				s.selfMu.Lock()
				s.selfOK = false
				s.selfMu.Unlock()
				var ok bool
				if self, ok = s.selfSample(time.Now()); !ok {
					continue
				}
				haveSelf = true
			}
			smp := self
			smp.TaskID, smp.Try = sl.id, sl.try
			emit(w, smp, true)
		}
	}
}

// readTree reads the process tree of worker w's bash task.
func (s *sampler) readTree(w int) (wire.ResourceSample, bool) {
	s.mu.Lock()
	sl := s.slots[w]
	s.mu.Unlock()
	if !sl.active || sl.root == 0 {
		return wire.ResourceSample{}, false
	}
	ps, err := s.r.Tree(sl.root)
	if err != nil || ps[0].StartTime != sl.rootStart {
		return wire.ResourceSample{}, false // ended, or the PID was reused
	}
	if ps[0].State == 'Z' || ps[0].State == 'X' || ps[0].VSize == 0 {
		// Exiting (its memory already released, still shown running) or
		// exited and not yet reaped: a sample would end the task's memory
		// curve at zero.
		return wire.ResourceSample{}, false
	}
	u := s.r.Sum(ps)
	// The command's children that have exited count: a pipeline of short
	// commands uses its CPU in processes that are gone by the next
	// reading.
	u.UserSeconds += u.ReapedUserSeconds
	u.SystemSeconds += u.ReapedSystemSeconds
	smp := s.sample(u, time.Now())
	smp.TaskID, smp.Try = sl.id, sl.try
	if sl.haveLast {
		// The counters of a tree only grow, but a reading can miss a
		// child that has exited and is not yet reaped (neither in the
		// tree nor in its parent's reaped totals): never report less
		// than before.
		p := sl.last
		smp.UserSeconds = max(smp.UserSeconds, p.UserSeconds)
		smp.SystemSeconds = max(smp.SystemSeconds, p.SystemSeconds)
		smp.ReadBytes = max(smp.ReadBytes, p.ReadBytes)
		smp.WriteBytes = max(smp.WriteBytes, p.WriteBytes)
		smp.CtxVoluntary = max(smp.CtxVoluntary, p.CtxVoluntary)
		smp.CtxInvoluntary = max(smp.CtxInvoluntary, p.CtxInvoluntary)
	}
	return smp, true
}

// discover looks among the pool's children for the commands of bash tasks
// not found yet and returns the workers whose command it found. A child
// belongs to the worker named by PARSL_WORKER_RANK in its environment.
// The slot must not have changed task since snap was taken: a worker
// reaps its command before it takes another task, so a child listed
// after snap was taken belongs to the task snap shows.
func (s *sampler) discover(snap []slot) []int {
	kids, err := s.r.Children(s.self)
	if err != nil {
		s.log.Debug("resource monitoring: listing the pool's child processes failed", "err", err)
		return nil
	}
	var found []int
	live := make(map[int]bool, len(kids))
	for _, pid := range kids {
		live[pid] = true
		p, err := s.r.Process(pid)
		if err != nil {
			continue
		}
		if start, ok := s.notOurs[pid]; ok && start == p.StartTime {
			continue
		}
		owned := false
		for _, sl := range snap {
			if sl.root == pid && sl.rootStart == p.StartTime {
				owned = true
				break
			}
		}
		if owned {
			continue
		}
		env, err := s.r.Environ(pid)
		if err != nil {
			continue // exited, or exec'd something unreadable: try again next time
		}
		rank, ok := workerRank(env, s.manager)
		if !ok || rank >= len(snap) {
			// A child forked but not yet exec'd still shows the pool's
			// own environment (and name): look again next time rather
			// than writing it off, or a loaded machine loses the
			// command of a task for good.
			if s.selfComm == "" {
				if me, err := s.r.Process(s.self); err == nil {
					s.selfComm = me.Comm
				}
			}
			if p.Comm != s.selfComm {
				s.notOurs[pid] = p.StartTime
			}
			continue
		}
		if sl := snap[rank]; !sl.active || !sl.bash || sl.root != 0 {
			continue
		}
		s.mu.Lock()
		if cur := &s.slots[rank]; cur.seq == snap[rank].seq && cur.active && cur.root == 0 {
			cur.root, cur.rootStart = pid, p.StartTime
			snap[rank].root, snap[rank].rootStart = pid, p.StartTime
			found = append(found, rank)
		}
		s.mu.Unlock()
	}
	for pid := range s.notOurs {
		if !live[pid] {
			delete(s.notOurs, pid)
		}
	}
	return found
}

// workerRank returns the worker rank of a child's environment when the
// child is a command of this pool's workers.
func workerRank(env []byte, manager string) (int, bool) {
	if id, ok := procstat.LookupEnv(env, "PARSL_WORKER_POOL_ID"); !ok || id != manager {
		return 0, false
	}
	v, ok := procstat.LookupEnv(env, "PARSL_WORKER_RANK")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
