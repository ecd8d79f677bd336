package scaling_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/scaling"
)

// simBlock is one block of the simulated provider and executor.
type simBlock struct {
	id        string
	state     provider.JobState
	startAt   time.Time   // when the scheduler starts it
	started   time.Time   // when it started running
	busy      []time.Time // finish times of the tasks on it
	idleSince time.Time
	// expiredSeen is set once the block was seen within its walltime
	// margin, for the oscillation check.
	expiredSeen bool
}

// scenario is one workload replayed tick by tick.
type scenario struct {
	name       string
	cfg        scaling.Config
	slots      int
	taskDur    time.Duration
	queueDelay time.Duration // how long a block stays pending
	walltime   time.Duration // 0: unlimited
	failing    bool          // every block fails before it runs
	ticks      int
	// load returns the tasks submitted at tick i.
	load func(i int) int
	// wantBad: the executor must be marked bad; otherwise all tasks
	// must finish and the blocks come back to MinBlocks.
	wantBad bool
	// wantTimeouts: some blocks must reach their walltime.
	wantTimeouts bool
}

const period = 5 * time.Second

func burst(n int) func(int) int {
	return func(i int) int {
		if i == 0 {
			return n
		}
		return 0
	}
}

func scenarios() []scenario {
	base := scaling.Config{MinBlocks: 0, InitBlocks: 1, MaxBlocks: 100, Parallelism: 1, MaxIdleTime: time.Minute}
	with := func(f func(*scaling.Config)) scaling.Config { c := base; f(&c); return c }
	return []scenario{
		{name: "burst 10k simple", cfg: base, slots: 8, taskDur: 20 * time.Second, queueDelay: 30 * time.Second, ticks: 200, load: burst(10000)},
		{name: "burst 10k htex_auto_scale", cfg: with(func(c *scaling.Config) { c.Strategy = scaling.HTEXAutoScale; c.MinBlocks = 2 }),
			slots: 8, taskDur: 20 * time.Second, queueDelay: 30 * time.Second, ticks: 200, load: burst(10000)},
		{name: "burst parallelism 0.25", cfg: with(func(c *scaling.Config) { c.Parallelism = 0.25 }),
			slots: 4, taskDur: 10 * time.Second, queueDelay: 10 * time.Second, ticks: 200, load: burst(2000)},
		{name: "parallelism 0", cfg: with(func(c *scaling.Config) { c.Parallelism = 0; c.InitBlocks = 0 }),
			slots: 4, taskDur: 10 * time.Second, queueDelay: 10 * time.Second, ticks: 200, load: burst(40)},
		{name: "trickle", cfg: with(func(c *scaling.Config) { c.Strategy = scaling.HTEXAutoScale; c.MaxBlocks = 10 }),
			slots: 4, taskDur: 3 * time.Second, queueDelay: 15 * time.Second, ticks: 150,
			load: func(i int) int { return map[bool]int{true: 1}[i < 100] }},
		{name: "idle", cfg: with(func(c *scaling.Config) { c.InitBlocks = 3; c.MinBlocks = 1 }),
			slots: 4, taskDur: time.Second, queueDelay: 10 * time.Second, ticks: 60, load: func(int) int { return 0 }},
		{name: "none keeps init blocks", cfg: with(func(c *scaling.Config) { c.Strategy = scaling.None; c.InitBlocks = 2; c.MinBlocks = 2 }),
			slots: 4, taskDur: 5 * time.Second, queueDelay: 10 * time.Second, ticks: 120, load: burst(100)},
		{name: "failing blocks", cfg: with(func(c *scaling.Config) { c.InitBlocks = 2 }),
			slots: 4, taskDur: time.Second, queueDelay: 20 * time.Second, failing: true, ticks: 60, load: burst(50), wantBad: true},
		{name: "flapping load", cfg: with(func(c *scaling.Config) { c.Strategy = scaling.HTEXAutoScale }),
			slots: 4, taskDur: 10 * time.Second, queueDelay: 10 * time.Second, ticks: 250,
			load: func(i int) int {
				if i < 160 && i%8 == 0 { // a burst every 40 s, quiet for less than MaxIdleTime
					return 200
				}
				return 0
			}},
		{name: "slow queue htex_auto_scale (#3696)", cfg: with(func(c *scaling.Config) { c.Strategy = scaling.HTEXAutoScale; c.MaxBlocks = 20 }),
			// Demand drops while blocks are still queued: Parsl scaled the
			// queued blocks in (they looked idle) and out again, forever.
			slots: 4, taskDur: 20 * time.Second, queueDelay: 5 * time.Minute, ticks: 300,
			load: func(i int) int {
				switch {
				case i == 0:
					return 40
				case i == 70:
					return 80
				case i > 70 && i < 200:
					return 1
				}
				return 0
			}},
		{name: "expiring walltimes", cfg: with(func(c *scaling.Config) {
			c.MaxBlocks = 20
			c.WalltimeMargin = time.Minute
			c.Strategy = scaling.HTEXAutoScale
		}),
			slots: 4, taskDur: 30 * time.Second, queueDelay: 20 * time.Second, walltime: 5 * time.Minute, ticks: 400, load: burst(4000), wantTimeouts: true},
		{name: "1000 blocks", cfg: with(func(c *scaling.Config) { c.MaxBlocks = 1000 }),
			slots: 10, taskDur: 10 * time.Second, queueDelay: 10 * time.Second, ticks: 100, load: burst(20000)},
	}
}

// TestHarness replays each scenario through a simulated executor and
// provider, applying every decision, and checks the invariants after each
// tick.
func TestHarness(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) { replay(t, sc) })
	}
}

func replay(t *testing.T, sc scenario) {
	t.Helper()
	cfg := sc.cfg
	maxIdle := cfg.MaxIdleTime
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var (
		blocks     []*simBlock
		byID       = map[string]*simBlock{}
		queue      int
		done       int
		submitted  int
		failures   []scaling.Failure
		ran        bool
		st         scaling.State
		bad        string
		timeouts   int
		lastIn     time.Time // last scale-in
		lastInTgt  int       // target at the last scale-in
		lostSince  bool      // a block ended or began expiring since the last scale-in
		loadEnd    time.Time // first tick with no outstanding task after work
		maxBlocks  int
		hadWork    bool
		scaleOuts  int
		margin     = cfg.WalltimeMargin
		totalTasks int
		first      = true
	)
	if margin == 0 {
		margin = scaling.DefaultWalltimeMargin
	}
	live := func(b *simBlock) bool { return !b.state.Terminal() }
	expiring := func(b *simBlock) bool {
		return b.state == provider.Running && sc.walltime > 0 && sc.walltime-now.Sub(b.started) < margin
	}
	capacity := func() (pending, running int) {
		for _, b := range blocks {
			switch {
			case !live(b) || expiring(b):
			case b.state == provider.Running:
				running++
			default:
				pending++
			}
		}
		return
	}
	snapshot := func() scaling.Snapshot {
		s := scaling.Snapshot{Now: now, Outstanding: queue, SlotsPerBlock: sc.slots, Config: cfg, Failures: failures, Ran: ran}
		for _, b := range blocks {
			if !live(b) {
				continue
			}
			s.Outstanding += len(b.busy)
			sb := scaling.Block{ID: b.id, State: b.state, IdleSince: b.idleSince, Tasks: len(b.busy)}
			if b.state == provider.Running && sc.walltime > 0 {
				sb.WalltimeLeft = sc.walltime - now.Sub(b.started)
			}
			s.Blocks = append(s.Blocks, sb)
		}
		return s
	}
	apply := func(snap scaling.Snapshot, acts []scaling.Action) {
		target := scaling.Target(snap)
		for _, a := range acts {
			switch a.Kind {
			case scaling.ScaleOut:
				p, r := capacity()
				if !first && p+r+a.Count > target {
					t.Fatalf("%s: over-submission: %d pending + %d running + %d new > target %d", now.Format(time.TimeOnly), p, r, a.Count, target)
				}
				if !lastIn.IsZero() && now.Sub(lastIn) < maxIdle && target <= lastInTgt && !lostSince {
					t.Fatalf("%s: oscillation: scaled out %d blocks %s after a scale-in with no new demand (target %d, was %d)",
						now.Format(time.TimeOnly), a.Count, now.Sub(lastIn), target, lastInTgt)
				}
				scaleOuts++
				for range a.Count {
					b := &simBlock{id: strconv.Itoa(submitted), state: provider.Pending, startAt: now.Add(sc.queueDelay)}
					submitted++
					blocks = append(blocks, b)
					byID[b.id] = b
				}
			case scaling.ScaleIn:
				for _, id := range a.BlockIDs {
					b := byID[id]
					if b == nil || !live(b) {
						continue // already gone: scale-in is idempotent
					}
					if len(b.busy) > 0 {
						t.Fatalf("%s: scaled in block %s with %d tasks", now.Format(time.TimeOnly), id, len(b.busy))
					}
					if b.state != provider.Running && snap.Outstanding > 0 {
						t.Fatalf("%s: scaled in pending block %s while %d tasks wait (#3696)", now.Format(time.TimeOnly), id, snap.Outstanding)
					}
					if b.state == provider.Running && !expiring(b) && now.Sub(b.idleSince) < maxIdle {
						t.Fatalf("%s: scaled in block %s idle for only %s", now.Format(time.TimeOnly), id, now.Sub(b.idleSince))
					}
					b.state = provider.ScaledIn
				}
				lastIn, lastInTgt, lostSince = now, target, false
			case scaling.MarkBad:
				bad = a.Reason
			}
		}
	}

	// The first decision is made when the executor starts, before any
	// task, and launches the initial blocks.
	{
		snap := snapshot()
		acts, next := scaling.Decide(snap, st)
		st = next
		apply(snap, acts)
		if p, r := capacity(); p+r != min(max(cfg.InitBlocks, cfg.MinBlocks), cfg.MaxBlocks) {
			t.Fatalf("first decision started %d blocks, want init_blocks %d", p+r, cfg.InitBlocks)
		}
		first = false
	}
	for i := 0; i < sc.ticks && bad == ""; i++ {
		n := sc.load(i)
		queue += n
		totalTasks += n
		// The provider starts, fails and expires blocks.
		for _, b := range blocks {
			if b.state == provider.Pending && !now.Before(b.startAt) {
				if sc.failing {
					b.state = provider.Failed
					failures = append(failures, scaling.Failure{BlockID: b.id, State: provider.Failed, ExitCode: 1,
						Message: "stderr tail: pool: cannot import worker: no such file"})
					lostSince = true
					continue
				}
				b.state, b.started, b.idleSince, ran = provider.Running, b.startAt, b.startAt, true
			}
			if b.state != provider.Running {
				continue
			}
			// Finished tasks free their slots.
			kept := b.busy[:0]
			var last time.Time
			for _, f := range b.busy {
				if f.After(now) {
					kept = append(kept, f)
				} else {
					done++
					if f.After(last) {
						last = f
					}
				}
			}
			b.busy = kept
			if len(b.busy) == 0 && !last.IsZero() {
				b.idleSince = last
			}
			if sc.walltime > 0 && now.Sub(b.started) >= sc.walltime {
				queue += len(b.busy) // the tasks on it are lost and retried
				b.busy, b.state = nil, provider.Timeout
				timeouts++
				lostSince = true
				continue
			}
			if expiring(b) && !b.expiredSeen {
				b.expiredSeen, lostSince = true, true
			}
		}
		// The interchange hands queued tasks to free slots.
		for _, b := range blocks {
			for b.state == provider.Running && queue > 0 && len(b.busy) < sc.slots {
				b.busy = append(b.busy, now.Add(sc.taskDur))
				b.idleSince = time.Time{}
				queue--
			}
		}
		snap := snapshot()
		acts, next := scaling.Decide(snap, st)
		st = next
		apply(snap, acts)

		// Invariants after the actions.
		p, r := capacity()
		maxBlocks = max(maxBlocks, p+r)
		if p+r > max(cfg.MaxBlocks, cfg.MinBlocks) {
			t.Fatalf("%s: %d capacity blocks exceed max_blocks %d", now.Format(time.TimeOnly), p+r, cfg.MaxBlocks)
		}
		if bad == "" && cfg.Strategy != scaling.None && snap.Outstanding > 0 && p+r < scaling.Target(snap) {
			t.Fatalf("%s: %d outstanding tasks need %d blocks, only %d pending or running (expiring blocks not replaced?)",
				now.Format(time.TimeOnly), snap.Outstanding, scaling.Target(snap), p+r)
		}
		if snap.Outstanding > 0 {
			hadWork, loadEnd = true, time.Time{}
		} else if hadWork && loadEnd.IsZero() {
			loadEnd = now
		}
		// Prompt scale-in: a block must be gone MaxIdleTime plus one period
		// after the load ended or it started, whichever is later.
		if cfg.Strategy != scaling.None && !loadEnd.IsZero() {
			overdue := 0
			for _, b := range blocks {
				if live(b) && now.Sub(later(loadEnd, b.started)) >= maxIdle+period {
					overdue++
				}
			}
			if overdue > cfg.MinBlocks {
				t.Fatalf("%s: %d blocks still up %s after the load ended (min_blocks %d)", now.Format(time.TimeOnly), overdue, now.Sub(loadEnd), cfg.MinBlocks)
			}
		}
		now = now.Add(period)
	}

	if sc.wantBad {
		if bad == "" {
			t.Fatalf("failing blocks: executor never marked bad after %d submissions", submitted)
		}
		if !strings.Contains(bad, "cannot import worker") || !strings.Contains(bad, "none ever ran") {
			t.Fatalf("MarkBad reason lacks the blocks' stderr: %q", bad)
		}
		// The burst asks for ceil(50/4) = 13 blocks before any fails;
		// failed blocks must not be replaced past the threshold.
		if submitted > 13+scaling.DefaultFailureThreshold {
			t.Fatalf("%d blocks submitted before marking bad", submitted)
		}
		return
	}
	if bad != "" {
		t.Fatalf("unexpectedly marked bad: %s", bad)
	}
	if done != totalTasks {
		t.Fatalf("%d of %d tasks done at the end", done, totalTasks)
	}
	if sc.wantTimeouts && timeouts == 0 {
		t.Fatal("no block reached its walltime; the scenario tests nothing")
	}
	liveN := 0
	for _, b := range blocks {
		if live(b) {
			liveN++
		}
	}
	want := max(cfg.MinBlocks, 0)
	if cfg.Strategy == scaling.None {
		want = min(max(cfg.InitBlocks, cfg.MinBlocks), cfg.MaxBlocks)
	}
	if liveN != want {
		t.Fatalf("%d blocks left at the end, want %d", liveN, want)
	}
	t.Logf("%d tasks, %d blocks submitted, at most %d at once, %d scale-outs, %d timeouts", totalTasks, submitted, maxBlocks, scaleOuts, timeouts)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
