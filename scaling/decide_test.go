package scaling_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parsl-go/parsl/provider"
	"github.com/parsl-go/parsl/scaling"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func running(id string, idleFor time.Duration, tasks int) scaling.Block {
	b := scaling.Block{ID: id, State: provider.Running, Tasks: tasks}
	if tasks == 0 {
		b.IdleSince = t0.Add(-idleFor)
	}
	return b
}

func pending(id string) scaling.Block { return scaling.Block{ID: id, State: provider.Pending} }

// TestDecide pins single decisions of each rule.
func TestDecide(t *testing.T) {
	cfg := scaling.Config{MinBlocks: 1, InitBlocks: 2, MaxBlocks: 10, Parallelism: 1, MaxIdleTime: time.Minute}
	auto := cfg
	auto.Strategy = scaling.HTEXAutoScale
	none := cfg
	none.Strategy = scaling.None
	started := scaling.State{Started: true}
	idle := scaling.State{Started: true, IdleSince: t0.Add(-2 * time.Minute)}
	fail := scaling.Failure{BlockID: "0", State: provider.Failed, ExitCode: 2, Message: "python: no module named worker\n"}
	cases := []struct {
		name  string
		snap  scaling.Snapshot
		st    scaling.State
		want  []scaling.Action // Reason is not compared
		after scaling.State
	}{
		{"first decision launches init blocks", scaling.Snapshot{Config: cfg}, scaling.State{},
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 2}}, scaling.State{Started: true, IdleSince: t0}},
		{"first decision counts existing blocks", scaling.Snapshot{Config: cfg, Blocks: []scaling.Block{pending("0")}}, scaling.State{},
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 1}}, scaling.State{Started: true, IdleSince: t0}},
		{"none never scales after init", scaling.Snapshot{Config: none, Outstanding: 1000, SlotsPerBlock: 1}, started, nil, started},
		{"simple scales out to ceil(tasks/slots)", scaling.Snapshot{Config: cfg, Outstanding: 17, SlotsPerBlock: 4, Blocks: []scaling.Block{running("0", 0, 4)}}, started,
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 4}}, started},
		{"pending blocks are capacity", scaling.Snapshot{Config: cfg, Outstanding: 17, SlotsPerBlock: 4,
			Blocks: []scaling.Block{running("0", 0, 4), pending("1"), pending("2"), pending("3"), pending("4")}}, started, nil, started},
		{"unknown state is capacity (#2255)", scaling.Snapshot{Config: cfg, Outstanding: 8, SlotsPerBlock: 4,
			Blocks: []scaling.Block{{ID: "0", State: provider.Unknown}, {ID: "1", State: provider.Held}}}, started, nil, started},
		{"clamped to max blocks", scaling.Snapshot{Config: cfg, Outstanding: 100000, SlotsPerBlock: 1}, started,
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 10}}, started},
		{"parallelism scales demand", scaling.Snapshot{Config: func() scaling.Config { c := cfg; c.Parallelism = 0.5; return c }(), Outstanding: 16, SlotsPerBlock: 2}, started,
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 4}}, started},
		{"terminal blocks are not capacity", scaling.Snapshot{Config: cfg, Outstanding: 4, SlotsPerBlock: 4,
			Blocks: []scaling.Block{{ID: "0", State: provider.Timeout}, {ID: "1", State: provider.ScaledIn}}}, started,
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 1}}, started},
		{"idle executor keeps blocks before max idle time", scaling.Snapshot{Now: t0, Config: cfg, Blocks: []scaling.Block{running("0", time.Hour, 0), running("1", time.Hour, 0)}},
			scaling.State{Started: true, IdleSince: t0.Add(-30 * time.Second)}, nil, scaling.State{Started: true, IdleSince: t0.Add(-30 * time.Second)}},
		{"idle executor scales in all surplus at once, down to min", scaling.Snapshot{Now: t0, Config: cfg,
			Blocks: []scaling.Block{running("0", 2*time.Minute, 0), running("1", 5*time.Minute, 0), running("2", 3*time.Minute, 0), pending("3")}}, idle,
			[]scaling.Action{{Kind: scaling.ScaleIn, BlockIDs: []string{"3", "1", "2"}}}, idle},
		{"recently idle blocks are kept (hysteresis)", scaling.Snapshot{Now: t0, Config: cfg,
			Blocks: []scaling.Block{running("0", 2*time.Minute, 0), running("1", 10*time.Second, 0), running("2", 10*time.Second, 0)}},
			scaling.State{Started: true, IdleSince: t0.Add(-2 * time.Minute)},
			[]scaling.Action{{Kind: scaling.ScaleIn, BlockIDs: []string{"0"}}}, idle},
		{"simple keeps surplus blocks while work remains", scaling.Snapshot{Now: t0, Config: cfg, Outstanding: 1, SlotsPerBlock: 4,
			Blocks: []scaling.Block{running("0", 0, 1), running("1", time.Hour, 0)}}, started, nil, started},
		{"htex_auto_scale trims idle blocks, oldest idle first", scaling.Snapshot{Now: t0, Config: auto, Outstanding: 1, SlotsPerBlock: 4,
			Blocks: []scaling.Block{running("0", 0, 1), running("1", 2*time.Minute, 0), running("2", time.Hour, 0), running("3", 10*time.Second, 0), running("4", 3*time.Minute, 0)}}, started,
			[]scaling.Action{{Kind: scaling.ScaleIn, BlockIDs: []string{"2", "4", "1"}}}, started},
		{"htex_auto_scale never trims pending blocks (#3696)", scaling.Snapshot{Now: t0, Config: auto, Outstanding: 1, SlotsPerBlock: 4,
			Blocks: []scaling.Block{running("0", 0, 1), pending("1"), pending("2")}}, started, nil, started},
		{"expiring block is replaced and drained", scaling.Snapshot{Now: t0, Config: cfg, Outstanding: 4, SlotsPerBlock: 4,
			Blocks: []scaling.Block{{ID: "0", State: provider.Running, WalltimeLeft: time.Minute, IdleSince: t0}, {ID: "1", State: provider.Running, WalltimeLeft: time.Minute, Tasks: 4}}}, started,
			[]scaling.Action{{Kind: scaling.ScaleIn, BlockIDs: []string{"0"}}, {Kind: scaling.ScaleOut, Count: 1}}, started},
		{"block with walltime to spare is capacity", scaling.Snapshot{Now: t0, Config: cfg, Outstanding: 4, SlotsPerBlock: 4,
			Blocks: []scaling.Block{{ID: "1", State: provider.Running, WalltimeLeft: time.Hour, Tasks: 4}}}, started, nil, started},
		{"repeated failures mark the executor bad", scaling.Snapshot{Config: cfg, Outstanding: 4, SlotsPerBlock: 4,
			Failures: []scaling.Failure{fail, fail, fail}}, started,
			[]scaling.Action{{Kind: scaling.MarkBad}}, scaling.State{Started: true, Bad: true}},
		{"failures after a block ran are not fatal", scaling.Snapshot{Config: cfg, Outstanding: 4, SlotsPerBlock: 4, Ran: true,
			Failures: []scaling.Failure{fail, fail, fail}}, started,
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 1}}, started},
		{"fewer failures than the threshold", scaling.Snapshot{Config: cfg, Outstanding: 4, SlotsPerBlock: 4,
			Failures: []scaling.Failure{fail, fail}}, started,
			[]scaling.Action{{Kind: scaling.ScaleOut, Count: 1}}, started},
		{"bad executor does nothing", scaling.Snapshot{Config: cfg, Outstanding: 100, SlotsPerBlock: 1}, scaling.State{Started: true, Bad: true},
			nil, scaling.State{Started: true, Bad: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.snap.Now.IsZero() {
				c.snap.Now = t0
			}
			got, st := scaling.Decide(c.snap, c.st)
			for i := range got {
				if got[i].Reason == "" {
					t.Errorf("action %d has no reason", i)
				}
				got[i].Reason = ""
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("actions = %+v, want %+v", got, c.want)
			}
			if st != c.after {
				t.Errorf("state = %+v, want %+v", st, c.after)
			}
		})
	}
}

func TestMarkBadReasonHasStderr(t *testing.T) {
	var f []scaling.Failure
	for i := range 4 {
		f = append(f, scaling.Failure{BlockID: strconv.Itoa(i), State: provider.Missing, ExitCode: 1, Message: fmt.Sprintf("stderr: error %d", i)})
	}
	acts, _ := scaling.Decide(scaling.Snapshot{Now: t0, Failures: f}, scaling.State{Started: true})
	if len(acts) != 1 || acts[0].Kind != scaling.MarkBad {
		t.Fatalf("actions = %+v", acts)
	}
	want := "4 blocks failed and none ever ran:\nblock 1: MISSING, exit code 1:\nstderr: error 1\nblock 2: MISSING, exit code 1:\nstderr: error 2\nblock 3: MISSING, exit code 1:\nstderr: error 3"
	if acts[0].Reason != want {
		t.Fatalf("reason:\n%s\nwant:\n%s", acts[0].Reason, want)
	}
}

// fakeScaler records what the loop asks for.
type fakeScaler struct {
	mu       sync.Mutex
	outs     []int
	ins      [][]string
	blocks   int
	failNext bool
}

func (f *fakeScaler) ScaleOut(ctx context.Context, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext {
		f.failNext = false
		return errors.New("submit failed")
	}
	f.outs = append(f.outs, n)
	f.blocks += n
	return nil
}

func (f *fakeScaler) ScaleIn(ctx context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ins = append(f.ins, ids)
	return nil
}

func (f *fakeScaler) snapshot(ctx context.Context) (scaling.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := scaling.Snapshot{Now: time.Now(), Outstanding: 10, SlotsPerBlock: 1,
		Config: scaling.Config{InitBlocks: 1, MaxBlocks: 3, Parallelism: 1, MaxIdleTime: time.Minute}}
	for i := range f.blocks {
		s.Blocks = append(s.Blocks, scaling.Block{ID: strconv.Itoa(i), State: provider.Running, Tasks: 1})
	}
	return s, nil
}

// TestLoop checks that the loop makes the first decision at once, applies
// later ones each period, reports errors and stops on Close.
func TestLoop(t *testing.T) {
	f := &fakeScaler{failNext: false}
	errs := make(chan error, 10)
	l := scaling.StartLoop(f, scaling.LoopOptions{Period: 10 * time.Millisecond, Snapshot: f.snapshot,
		OnError: func(err error) { errs <- err }})
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := f.blocks
		f.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loop reached %d blocks, want 3", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Close() // idempotent
	f.mu.Lock()
	outs := append([]int(nil), f.outs...)
	f.mu.Unlock()
	if !reflect.DeepEqual(outs, []int{1, 2}) {
		t.Fatalf("scale-outs = %v, want [1 2] (init, then demand)", outs)
	}
	time.Sleep(30 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.outs) != 2 {
		t.Fatal("loop acted after Close")
	}
	select {
	case err := <-errs:
		t.Fatalf("unexpected error: %v", err)
	default:
	}
}

func TestLoopErrorsAndMarkBad(t *testing.T) {
	f := &fakeScaler{failNext: true}
	errs := make(chan error, 10)
	bad := make(chan string, 1)
	snapErr := true
	l := scaling.StartLoop(f, scaling.LoopOptions{Period: 5 * time.Millisecond,
		Snapshot: func(ctx context.Context) (scaling.Snapshot, error) {
			if snapErr {
				snapErr = false
				return scaling.Snapshot{}, errors.New("status failed")
			}
			s, _ := f.snapshot(ctx)
			s.Blocks = nil
			s.Failures = []scaling.Failure{{BlockID: "0"}, {BlockID: "1"}, {BlockID: "2"}}
			return s, nil
		},
		OnError: func(err error) { errs <- err },
		OnBad:   func(r string) { bad <- r }})
	defer l.Close()
	select {
	case r := <-bad:
		if r == "" {
			t.Fatal("empty reason")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never marked bad")
	}
	if err := <-errs; err.Error() != "status failed" {
		t.Fatalf("first error = %v", err)
	}
}

// BenchmarkDecide is one decision over 1,000 blocks with 100,000 queued
// tasks under htex_auto_scale, the most expensive strategy.
func BenchmarkDecide(b *testing.B) {
	s := scaling.Snapshot{Now: t0, Outstanding: 100000, SlotsPerBlock: 8,
		Config: scaling.Config{MaxBlocks: 2000, Parallelism: 0.01, MaxIdleTime: time.Minute, Strategy: scaling.HTEXAutoScale}}
	for i := range 1000 {
		switch i % 4 {
		case 0:
			s.Blocks = append(s.Blocks, pending(strconv.Itoa(i)))
		case 1:
			s.Blocks = append(s.Blocks, running(strconv.Itoa(i), time.Duration(i)*time.Second, 0))
		default:
			s.Blocks = append(s.Blocks, running(strconv.Itoa(i), 0, 8))
		}
	}
	st := scaling.State{Started: true}
	b.ReportAllocs()
	for b.Loop() {
		scaling.Decide(s, st)
	}
}

// TestLoopInitialAndPoke: a loop given the state of a first decision the
// executor made itself goes on from there (its first decision scales by
// demand, not to the initial blocks), and Poke makes a decision without
// waiting for the period.
func TestLoopInitialAndPoke(t *testing.T) {
	f := &fakeScaler{blocks: 1} // the initial block, started by the executor
	decisions := make(chan []scaling.Action, 10)
	l := scaling.StartLoop(f, scaling.LoopOptions{Period: time.Hour, Snapshot: f.snapshot,
		Initial:    scaling.State{Started: true},
		OnDecision: func(_ scaling.Snapshot, a []scaling.Action) { decisions <- a }})
	defer l.Close()
	select {
	case a := <-decisions:
		if len(a) != 1 || a[0].Kind != scaling.ScaleOut || a[0].Count != 2 {
			t.Fatalf("first decision = %+v, want scale-out 2 for the demand", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first decision")
	}
	l.Poke()
	select {
	case a := <-decisions:
		if len(a) != 0 {
			t.Fatalf("decision after poke = %+v, want none (3 blocks cover the demand)", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Poke made no decision")
	}
}
