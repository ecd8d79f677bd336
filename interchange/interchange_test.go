package interchange_test

import (
	"bufio"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/wire"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

type sink struct {
	mu  sync.Mutex
	got []wire.Result
	ch  chan struct{}
}

func (s *sink) deliver(rs []wire.Result, _ interchange.ManagerInfo) {
	s.mu.Lock()
	s.got = append(s.got, rs...)
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func (s *sink) wait(t *testing.T, n int, within time.Duration) []wire.Result {
	t.Helper()
	deadline := time.After(within)
	for {
		s.mu.Lock()
		if len(s.got) >= n {
			out := append([]wire.Result(nil), s.got...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-s.ch:
		case <-deadline:
			t.Fatalf("got %d results, want %d", len(s.got), n)
		}
	}
}

func start(t *testing.T, o interchange.Options) (*interchange.Interchange, *sink) {
	t.Helper()
	s := &sink{ch: make(chan struct{}, 1)}
	o.Secret = secret
	o.Deliver = s.deliver
	if o.HeartbeatPeriod == 0 {
		o.HeartbeatPeriod = 100 * time.Millisecond
	}
	ix, err := interchange.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	return ix, s
}

type fakePool struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func join(t testing.TB, ix *interchange.Interchange, h wire.Hello) *fakePool {
	t.Helper()
	c, err := net.Dial("tcp", ix.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &fakePool{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if h.Workers == 0 {
		h.Workers = 1
	}
	if _, err := wire.ClientHandshake(p.r, p.w, secret, h); err != nil {
		t.Fatal(err)
	}
	return p
}

// tasks reads frames until a task batch arrives (skipping heartbeats).
func (p *fakePool) tasks(t *testing.T) []wire.Task {
	t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		typ, b, err := wire.ReadFrame(p.r, 0)
		if err != nil {
			t.Fatalf("reading tasks: %v", err)
		}
		if typ == wire.THeartbeat {
			continue
		}
		if typ != wire.TTasks {
			t.Fatalf("got %s, want tasks", typ)
		}
		var ts wire.Tasks
		if err := wire.Decode(typ, b, &ts); err != nil {
			t.Fatal(err)
		}
		return ts.Tasks
	}
}

// quiet checks that no task batch arrives for d, and returns the other
// frame types seen.
func (p *fakePool) quiet(t *testing.T, d time.Duration) []wire.Type {
	t.Helper()
	var seen []wire.Type
	_ = p.c.SetReadDeadline(time.Now().Add(d))
	for {
		typ, _, err := wire.ReadFrame(p.r, 0)
		if err != nil {
			return seen
		}
		if typ == wire.TTasks {
			t.Fatal("got tasks, want none")
		}
		seen = append(seen, typ)
	}
}

func (p *fakePool) send(t *testing.T, typ wire.Type, v any) {
	t.Helper()
	if err := wire.WriteFrame(p.w, typ, v); err != nil {
		t.Fatal(err)
	}
	if err := p.w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func item(t testing.TB, id int64, prio int, walltime time.Duration, bash bool) interchange.Item {
	wt := wire.Task{ID: id, App: "a", Priority: prio, Walltime: walltime}
	if bash {
		wt.Command = "true"
	}
	b, err := codec.Marshal(&wt)
	if err != nil {
		t.Fatal(err)
	}
	return interchange.Item{ID: id, Priority: prio, Walltime: walltime, Bash: bash, Payload: b}
}

func ids(ts []wire.Task) []int64 {
	out := make([]int64, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPriorityOrder(t *testing.T) {
	ix, _ := start(t, interchange.Options{})
	prios := map[int64]int{1: 0, 2: 5, 3: 1, 4: 0, 5: 1, 6: 3, 7: -2}
	for id := int64(7); id >= 1; id-- {
		ix.Enqueue(item(t, id, prios[id], 0, false))
	}
	p := join(t, ix, wire.Hello{Workers: 1, Prefetch: 99})
	got := ids(p.tasks(t))
	// Lower value first; unset (0) last; by task ID within a priority.
	want := []int64{7, 3, 5, 6, 2, 1, 4}
	if !equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestCapacityAndRefill(t *testing.T) {
	ix, s := start(t, interchange.Options{})
	p := join(t, ix, wire.Hello{Workers: 2, Prefetch: 1})
	for id := int64(1); id <= 10; id++ {
		ix.Enqueue(item(t, id, 0, 0, false))
	}
	var got []wire.Task
	for len(got) < 3 {
		got = append(got, p.tasks(t)...)
	}
	if len(got) != 3 {
		t.Fatalf("manager with 2 workers + 1 prefetch got %d tasks", len(got))
	}
	p.quiet(t, 100*time.Millisecond)
	p.send(t, wire.TResults, wire.Results{Results: []wire.Result{{ID: got[0].ID, Result: []byte{0x07}}}})
	if more := p.tasks(t); len(more) != 1 || more[0].ID != 4 {
		t.Fatalf("after one result got %v, want task 4", ids(more))
	}
	if rs := s.wait(t, 1, time.Second); rs[0].ID != 1 {
		t.Fatalf("delivered %+v", rs)
	}
	if q := ix.Queued(); q != 6 {
		t.Fatalf("queued %d, want 6", q)
	}
}

func TestGenericPoolGetsOnlyBash(t *testing.T) {
	ix, _ := start(t, interchange.Options{})
	ix.Enqueue(item(t, 1, 0, 0, false), item(t, 2, 0, 0, true), item(t, 3, 0, 0, false), item(t, 4, 0, 0, true))
	p := join(t, ix, wire.Hello{Workers: 10, Generic: true})
	if got := ids(p.tasks(t)); !equal(got, []int64{2, 4}) {
		t.Fatalf("generic pool got %v, want the bash tasks 2 and 4", got)
	}
	if q := ix.Queued(); q != 2 {
		t.Fatalf("queued %d, want the 2 Go tasks", q)
	}
	ix.Enqueue(item(t, 5, 0, 0, false))
	ix.Enqueue(item(t, 6, 0, 0, true))
	if got := ids(p.tasks(t)); !equal(got, []int64{6}) {
		t.Fatalf("generic pool then got %v, want the new bash task 6", got)
	}
}

func TestWalltimeLeftFilters(t *testing.T) {
	ix, _ := start(t, interchange.Options{})
	ix.Enqueue(item(t, 1, 0, time.Hour, false), item(t, 2, 0, 0, false), item(t, 3, 0, time.Second, false))
	p := join(t, ix, wire.Hello{Workers: 10, WalltimeLeft: time.Minute})
	if got := ids(p.tasks(t)); !equal(got, []int64{2, 3}) {
		t.Fatalf("block with a minute left got %v, want 2 and 3", got)
	}
}

func TestSilentManagerLost(t *testing.T) {
	ix, s := start(t, interchange.Options{HeartbeatThreshold: 300 * time.Millisecond})
	p := join(t, ix, wire.Hello{Workers: 1})
	ix.Enqueue(item(t, 9, 0, 0, false))
	p.tasks(t)
	rs := s.wait(t, 1, 3*time.Second)
	if rs[0].ID != 9 || rs[0].Err == nil || rs[0].Err.Kind != wire.ErrManagerLost {
		t.Fatalf("got %+v, want task 9 failed with ErrManagerLost", rs[0])
	}
	if n := len(ix.Managers()); n != 0 {
		t.Fatalf("%d managers left", n)
	}
}

func TestHeartbeatAnswered(t *testing.T) {
	ix, _ := start(t, interchange.Options{HeartbeatPeriod: time.Hour})
	p := join(t, ix, wire.Hello{Workers: 1})
	p.send(t, wire.THeartbeat, nil)
	if seen := p.quiet(t, 200*time.Millisecond); len(seen) == 0 || seen[0] != wire.THeartbeat {
		t.Fatalf("heartbeat not answered: %v", seen)
	}
}

func TestDrainThenShutdown(t *testing.T) {
	ix, s := start(t, interchange.Options{})
	p := join(t, ix, wire.Hello{Workers: 1})
	ix.Enqueue(item(t, 1, 0, 0, false), item(t, 2, 0, 0, false))
	got := p.tasks(t)
	p.send(t, wire.TDrain, nil)
	time.Sleep(50 * time.Millisecond)
	p.send(t, wire.TResults, wire.Results{Results: []wire.Result{{ID: got[0].ID, Result: []byte{0x01}}}})
	s.wait(t, 1, time.Second)
	if seen := p.quiet(t, 300*time.Millisecond); len(seen) == 0 || seen[len(seen)-1] != wire.TShutdown {
		t.Fatalf("a drained manager must get shutdown, got %v", seen)
	}
	if q := ix.Queued(); q != 1 {
		t.Fatalf("queued %d, want 1 (not sent to the draining pool)", q)
	}
}

func TestMalformedFrameFailsManagerTasks(t *testing.T) {
	ix, s := start(t, interchange.Options{})
	p := join(t, ix, wire.Hello{Workers: 2})
	ix.Enqueue(item(t, 1, 0, 0, false), item(t, 2, 0, 0, false))
	for n := 0; n < 2; n += len(p.tasks(t)) {
	}
	_ = wire.WriteRaw(p.w, wire.TResults, []byte{0xff, 0x00})
	_ = p.w.Flush()
	rs := s.wait(t, 2, 2*time.Second)
	for _, r := range rs {
		if r.Err == nil || r.Err.Kind != wire.ErrManagerLost {
			t.Fatalf("got %+v, want ErrManagerLost", r)
		}
	}
	// The interchange still serves a new pool.
	ix.Enqueue(item(t, 3, 0, 0, false))
	q := join(t, ix, wire.Hello{Workers: 1})
	if got := ids(q.tasks(t)); !equal(got, []int64{3}) {
		t.Fatalf("new pool got %v", got)
	}
}

func TestStaleResultIgnored(t *testing.T) {
	ix, s := start(t, interchange.Options{})
	p := join(t, ix, wire.Hello{Workers: 1})
	ix.Enqueue(item(t, 1, 0, 0, false))
	p.tasks(t)
	p.send(t, wire.TResults, wire.Results{Results: []wire.Result{{ID: 77}, {ID: 1, Try: 3}, {ID: 1}}})
	rs := s.wait(t, 1, time.Second)
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 || rs[0].ID != 1 || rs[0].Try != 0 {
		t.Fatalf("delivered %+v, want only task 1 try 0", s.got)
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	s := &sink{ch: make(chan struct{}, 1)}
	ix, err := interchange.New(interchange.Options{Secret: secret, Deliver: s.deliver})
	if err != nil {
		t.Fatal(err)
	}
	p := join(t, ix, wire.Hello{Workers: 1})
	ix.Enqueue(item(t, 1, 0, 0, false))
	p.tasks(t)
	half, _ := net.Dial("tcp", ix.Addr().String()) // stuck in the handshake
	defer half.Close()
	time.Sleep(20 * time.Millisecond)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	p.c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestShutdownWaitsForPools(t *testing.T) {
	ix, _ := start(t, interchange.Options{})
	p := join(t, ix, wire.Hello{Workers: 1})
	done := make(chan error, 1)
	go func() { done <- ix.Shutdown(t.Context()) }()
	if seen := p.quiet(t, 300*time.Millisecond); len(seen) == 0 || seen[len(seen)-1] != wire.TShutdown {
		t.Fatalf("got %v, want shutdown", seen)
	}
	p.c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Shutdown did not return after the pool left")
	}
}
