package scaling

import (
	"context"
	"sync"
	"time"
)

// Scaler applies decisions to an executor. ScaleIn may be given a block
// it is already removing (a decision sees the provider's last status) and
// must then do nothing.
type Scaler interface {
	ScaleOut(ctx context.Context, n int) error
	ScaleIn(ctx context.Context, blockIDs []string) error
}

// LoopOptions configures a Loop.
type LoopOptions struct {
	// Period is the time between decisions; Parsl's strategy_period, 5 s
	// by default.
	Period time.Duration
	// Snapshot returns the executor's current snapshot.
	Snapshot func(ctx context.Context) (Snapshot, error)
	// OnBad is called once with the reason when the executor must be
	// marked bad; the loop then stops deciding.
	OnBad func(reason string)
	// OnError is told about failed snapshots and actions; the loop goes
	// on and tries again next period.
	OnError func(error)
	// OnDecision, when set, sees every decision's actions (for logs and
	// monitoring).
	OnDecision func(Snapshot, []Action)
	// Initial is the state of the loop's first decision. The zero State
	// makes the first decision launch the initial blocks; an executor
	// that made that decision itself (so that its blocks start before
	// Start returns, and a failed submit fails Start) passes the State
	// Decide returned.
	Initial State
}

// Loop runs Decide every period on its own goroutine and applies the
// actions through a Scaler. The first decision is made at once, so the
// initial blocks are requested when the executor starts.
type Loop struct {
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // cap 1: Poke asked for a decision now
	once   sync.Once
}

// StartLoop starts deciding for s. Close stops it.
func StartLoop(s Scaler, opts LoopOptions) *Loop {
	if opts.Period <= 0 {
		opts.Period = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Loop{cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go l.run(ctx, s, opts)
	return l
}

func (l *Loop) run(ctx context.Context, s Scaler, opts LoopOptions) {
	defer close(l.done)
	report := func(err error) {
		if err != nil && opts.OnError != nil && ctx.Err() == nil {
			opts.OnError(err)
		}
	}
	st := opts.Initial
	t := time.NewTicker(opts.Period)
	defer t.Stop()
	for {
		snap, err := opts.Snapshot(ctx)
		if err != nil {
			report(err)
		} else {
			var acts []Action
			acts, st = Decide(snap, st)
			if opts.OnDecision != nil {
				opts.OnDecision(snap, acts)
			}
			for _, a := range acts {
				if ctx.Err() != nil {
					return
				}
				switch a.Kind {
				case ScaleOut:
					report(s.ScaleOut(ctx, a.Count))
				case ScaleIn:
					report(s.ScaleIn(ctx, a.BlockIDs))
				case MarkBad:
					if opts.OnBad != nil {
						opts.OnBad(a.Reason)
					}
				}
			}
			if st.Bad {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.wake:
		}
	}
}

// Poke asks for a decision now instead of at the next period, for an
// event the executor saw first (a block that ended): a pool that dies at
// start is then replaced, or the executor marked bad, in a fraction of a
// period. It never blocks; pokes while one is pending are merged.
func (l *Loop) Poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Close stops the loop and waits for its goroutine, including any action
// in progress, whose context it cancels. It is safe to call more than once.
func (l *Loop) Close() error {
	l.once.Do(l.cancel)
	<-l.done
	return nil
}
