// Package scaling decides when an executor should add or remove blocks.
//
// A strategy is a pure function of a Snapshot (what the executor and its
// provider look like now) and the strategy's own small State, returning
// Actions (scale out n blocks, scale in these blocks, mark the executor
// bad). Nothing here does I/O, so every decision can be replayed and tested
// tick by tick; Loop applies the decisions to a real executor.
//
// The strategies are Parsl's ("none", "simple", "htex_auto_scale") with its
// known scaling bugs fixed: pending blocks count as capacity, so slow
// queues do not cause over-submission (#2195, #2255); blocks that never
// started are never "idle", so they are not scaled in as soon as they are
// scaled out (#3696); scale-in removes every surplus block at once
// (#2195, #2780); and blocks whose walltime is nearly over are not counted
// as capacity and are replaced while work remains (#1905, #3059).
package scaling

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/parsl-go/parsl/provider"
)

// Strategy names, as in Parsl's Config.strategy.
const (
	None          = "none"
	Simple        = "simple"
	HTEXAutoScale = "htex_auto_scale"
)

// Defaults used when a Config field is zero.
const (
	DefaultWalltimeMargin   = 2 * time.Minute
	DefaultFailureThreshold = 3
)

// Config is the executor's scaling configuration.
type Config struct {
	// MinBlocks, InitBlocks and MaxBlocks bound the number of blocks.
	// MaxBlocks counts capacity (pending and running blocks); a block
	// within WalltimeMargin of its end is not capacity, so its
	// replacement may briefly make one more block than MaxBlocks exist,
	// rather than leave work waiting for it to die.
	MinBlocks, InitBlocks, MaxBlocks int
	// Parallelism (0..1) is the fraction of outstanding tasks that should
	// have a slot: 1 asks for a slot per task, 0 for a single block as
	// soon as there is any work.
	Parallelism float64
	// MaxIdleTime is how long a block (or, for the whole-executor rule,
	// the executor) must have been idle before it is scaled in.
	MaxIdleTime time.Duration
	// Strategy is None, Simple or HTEXAutoScale; "" means Simple.
	Strategy string
	// WalltimeMargin: a running block with less walltime left than this
	// is about to end and is not counted as capacity. Zero means
	// DefaultWalltimeMargin.
	WalltimeMargin time.Duration
	// FailureThreshold is how many consecutive block failures, with no
	// block ever running, mark the executor bad. Zero means
	// DefaultFailureThreshold; negative disables the check.
	FailureThreshold int
}

// Block is one block as the executor and provider see it.
type Block struct {
	ID    string
	State provider.JobState
	// IdleSince is when the block's last task finished while no other
	// was running on it; zero while it has tasks or before any worker
	// of it connected. A block that never ran is therefore never idle
	// (Parsl's infinite idle time for such blocks caused #3696).
	IdleSince time.Time
	// WalltimeLeft is how long the block may still run; zero when
	// unknown or unlimited.
	WalltimeLeft time.Duration
	// Tasks is how many tasks are running on the block.
	Tasks int
}

// Failure is one block that ended without ever running.
type Failure struct {
	BlockID  string
	State    provider.JobState
	ExitCode int
	// Message is the provider's reason, typically with the tail of the
	// block's stderr, which is what a user needs to fix the cause.
	Message string
}

// Snapshot is everything a strategy looks at.
type Snapshot struct {
	Now time.Time
	// Outstanding is tasks queued or running in the executor.
	Outstanding int
	// SlotsPerBlock is workers per node × nodes per block.
	SlotsPerBlock int
	// Blocks are the executor's blocks; terminal ones are ignored.
	Blocks []Block
	// Failures are the most recent block failures, oldest first, and
	// Ran says whether any block of the executor ever ran.
	Failures []Failure
	Ran      bool
	Config   Config
}

// State is what a strategy remembers between decisions. The zero State
// means the first decision, which launches the initial blocks; Loop makes
// it when the executor starts, not one period later (Parsl PR #3785).
type State struct {
	// Started is set by the first decision.
	Started bool
	// IdleSince is when the executor last had no outstanding task; zero
	// while it has work.
	IdleSince time.Time
	// Bad is set once the executor was marked bad; no action follows.
	Bad bool
}

// Kind is what an Action does.
type Kind int

// Action kinds.
const (
	ScaleOut Kind = iota + 1
	ScaleIn
	MarkBad
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case ScaleOut:
		return "scale-out"
	case ScaleIn:
		return "scale-in"
	case MarkBad:
		return "mark-bad"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Action is one change to apply to the executor.
type Action struct {
	Kind Kind
	// Count is the number of blocks to add, for ScaleOut.
	Count int
	// BlockIDs are the blocks to remove, for ScaleIn.
	BlockIDs []string
	// Reason explains the action; for MarkBad it lists the failures.
	Reason string
}

// view is a Snapshot sorted into what the rules need.
type view struct {
	pending  []*Block // submitted, not yet running: capacity on its way
	running  []*Block // running with enough walltime left
	expiring []*Block // running but about to hit walltime
}

func (v *view) active() int { return len(v.pending) + len(v.running) }

func classify(s *Snapshot, margin time.Duration) view {
	// One backing array for the three lists keeps a decision over
	// thousands of blocks to a handful of allocations.
	n := len(s.Blocks)
	all := make([]*Block, 0, 3*n)
	v := view{pending: all[0:0:n], running: all[n : n : 2*n], expiring: all[2*n : 2*n]}
	for i := range s.Blocks {
		b := &s.Blocks[i]
		switch {
		case b.State.Terminal():
		case b.State == provider.Running:
			if b.WalltimeLeft > 0 && b.WalltimeLeft < margin {
				v.expiring = append(v.expiring, b)
			} else {
				v.running = append(v.running, b)
			}
		default:
			// Pending, Held and Unknown blocks may still start, so they
			// count as capacity: a provider that cannot map a state
			// must not make us submit more (#2255).
			v.pending = append(v.pending, b)
		}
	}
	return v
}

// Target is the number of capacity blocks the simple rule wants for the
// snapshot's outstanding tasks: ceil(outstanding × parallelism / slots),
// at least one block when there is any work, clamped to [min, max].
func Target(s Snapshot) int {
	c := s.Config
	need := 0
	if s.Outstanding > 0 {
		slots := max(s.SlotsPerBlock, 1)
		p := min(max(c.Parallelism, 0), 1)
		need = max(int(math.Ceil(float64(s.Outstanding)*p/float64(slots))), 1)
	}
	return min(max(need, c.MinBlocks), max(c.MaxBlocks, 0))
}

// Decide returns the actions for snapshot s and the state for the next
// decision. It is pure and cheap (linear in the number of blocks).
func Decide(s Snapshot, st State) ([]Action, State) {
	if st.Bad {
		return nil, st
	}
	c := s.Config
	margin := c.WalltimeMargin
	if margin == 0 {
		margin = DefaultWalltimeMargin
	}
	if a, ok := tooManyFailures(s); ok {
		st.Bad = true
		return []Action{a}, st
	}
	v := classify(&s, margin)

	if s.Outstanding > 0 {
		st.IdleSince = time.Time{}
	} else if st.IdleSince.IsZero() {
		st.IdleSince = s.Now
	}

	if !st.Started {
		st.Started = true
		init := min(max(c.InitBlocks, c.MinBlocks), max(c.MaxBlocks, 0))
		if n := init - v.active(); n > 0 {
			return []Action{{Kind: ScaleOut, Count: n, Reason: fmt.Sprintf("initial blocks: %d", init)}}, st
		}
		return nil, st
	}
	strategy := c.Strategy
	if strategy == "" {
		strategy = Simple
	}
	if strategy == None {
		return nil, st
	}

	var acts []Action
	// Blocks about to hit walltime do no more useful work once idle, and
	// their replacements are already counted below, so they go at once.
	var drained []string
	for _, b := range v.expiring {
		if b.Tasks == 0 {
			drained = append(drained, b.ID)
		}
	}
	if len(drained) > 0 {
		acts = append(acts, Action{Kind: ScaleIn, BlockIDs: drained, Reason: "walltime nearly over and idle"})
	}

	target := Target(s)
	active := v.active()
	switch {
	case target > active:
		// Pending blocks are capacity, so this never re-requests blocks
		// the scheduler has not started yet: no over-submission and no
		// scale-out while the demand is covered by pending blocks.
		acts = append(acts, Action{Kind: ScaleOut, Count: target - active,
			Reason: fmt.Sprintf("%d outstanding tasks need %d blocks, %d pending, %d running", s.Outstanding, target, len(v.pending), len(v.running))})
	case active > target && s.Outstanding == 0:
		// No work at all: once the executor has been idle for
		// MaxIdleTime, every surplus block goes at once (#2195, #2780).
		if s.Now.Sub(st.IdleSince) >= c.MaxIdleTime {
			if ids := pickIdle(s.Now, v, active-target, c.MaxIdleTime, true); len(ids) > 0 {
				acts = append(acts, Action{Kind: ScaleIn, BlockIDs: ids, Reason: fmt.Sprintf("idle for %s with no outstanding tasks", c.MaxIdleTime)})
			}
		}
	case active > target && strategy == HTEXAutoScale:
		// Work remains but fewer blocks would do: only running blocks
		// idle for MaxIdleTime go, oldest idle first. Pending blocks are
		// never picked, which is what made Parsl oscillate (#3696).
		if ids := pickIdle(s.Now, v, active-target, c.MaxIdleTime, false); len(ids) > 0 {
			acts = append(acts, Action{Kind: ScaleIn, BlockIDs: ids, Reason: fmt.Sprintf("%d blocks more than the %d needed; idle for %s", active-target, target, c.MaxIdleTime)})
		}
	}
	return acts, st
}

// pickIdle chooses up to n blocks to scale in: running blocks with no task
// that have been idle at least maxIdle, oldest idle first. When withPending
// (the executor has had no work for maxIdle) pending blocks come first,
// newest first: they cost allocation for nothing, and the running blocks
// that stay for min_blocks are ready at once when work returns.
func pickIdle(now time.Time, v view, n int, maxIdle time.Duration, withPending bool) []string {
	var idle []*Block
	for _, b := range v.running {
		if b.Tasks == 0 && !b.IdleSince.IsZero() && now.Sub(b.IdleSince) >= maxIdle {
			idle = append(idle, b)
		}
	}
	slices.SortStableFunc(idle, func(a, b *Block) int { return a.IdleSince.Compare(b.IdleSince) })
	ids := make([]string, 0, min(n, len(idle)+len(v.pending)))
	if withPending {
		for i := len(v.pending) - 1; i >= 0 && len(ids) < n; i-- {
			ids = append(ids, v.pending[i].ID)
		}
	}
	for _, b := range idle {
		if len(ids) == n {
			break
		}
		ids = append(ids, b.ID)
	}
	return ids
}

// tooManyFailures reports a MarkBad action when the last FailureThreshold
// failures are consecutive and no block ever ran: the blocks cannot start
// (bad image, wrong account, a pool that crashes at start), and submitting
// more would only burn allocation and hide the cause.
func tooManyFailures(s Snapshot) (Action, bool) {
	n := s.Config.FailureThreshold
	if n == 0 {
		n = DefaultFailureThreshold
	}
	if n < 0 || s.Ran || len(s.Failures) < n {
		return Action{}, false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d blocks failed and none ever ran:", len(s.Failures))
	for _, f := range s.Failures[len(s.Failures)-n:] {
		fmt.Fprintf(&b, "\nblock %s: %s, exit code %d", f.BlockID, f.State, f.ExitCode)
		if m := strings.TrimSpace(f.Message); m != "" {
			fmt.Fprintf(&b, ":\n%s", m)
		}
	}
	return Action{Kind: MarkBad, Reason: b.String()}, true
}
