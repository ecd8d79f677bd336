package interchange_test

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/wire"
)

// joinWelcome is join that also returns the interchange's welcome.
func joinWelcome(t *testing.T, ix *interchange.Interchange, h wire.Hello) (*fakePool, wire.Welcome) {
	t.Helper()
	c, err := net.Dial("tcp", ix.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &fakePool{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	wl, err := wire.ClientHandshake(p.r, p.w, secret, h)
	if err != nil {
		t.Fatal(err)
	}
	return p, wl
}

// TestMonitorMessages: with OnMonitor set the welcome invites monitoring,
// and a pool's node description and samples reach OnMonitor with the
// manager, in the order the pool sent them relative to its results.
func TestMonitorMessages(t *testing.T) {
	var (
		mu    sync.Mutex
		mons  []*wire.Monitor
		from  []interchange.ManagerInfo
		done  = make(chan struct{})
		count int
	)
	note := func() {
		if count++; count == 3 {
			close(done)
		}
	}
	o := interchange.Options{
		OnMonitor: func(m interchange.ManagerInfo, msg *wire.Monitor) {
			mu.Lock()
			defer mu.Unlock()
			mons, from = append(mons, msg), append(from, m)
			note()
		},
	}
	ix, s := start(t, o)
	p, wl := joinWelcome(t, ix, wire.Hello{Workers: 1, Manager: "m1", Hostname: "h1", BlockID: "3"})
	if !wl.Monitor {
		t.Fatal("the welcome does not invite monitoring messages")
	}
	ix.Enqueue(item(t, 1, 0, 0, false))
	p.tasks(t)
	p.send(t, wire.TMonitor, wire.Monitor{Node: &wire.NodeInfo{CPUs: 4, MemoryBytes: 1 << 30, Runtime: "go1.x"}})
	p.send(t, wire.TMonitor, wire.Monitor{Resources: []wire.ResourceSample{{TaskID: 1, Time: 5, PID: 42, RSS: 1000}}})
	p.send(t, wire.TResults, wire.Results{Results: []wire.Result{{ID: 1}}})
	p.send(t, wire.TMonitor, wire.Monitor{Resources: []wire.ResourceSample{{TaskID: 1, Time: 6, PID: 42, RSS: 2000}}})
	s.wait(t, 1, 2*time.Second)
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("monitoring messages did not all arrive")
	}
	mu.Lock()
	defer mu.Unlock()
	if mons[0].Node == nil || mons[0].Node.CPUs != 4 || mons[1].Resources[0].RSS != 1000 || mons[2].Resources[0].RSS != 2000 {
		t.Errorf("messages %+v %+v %+v", mons[0], mons[1], mons[2])
	}
	for _, m := range from {
		if m.Name != "m1" || m.Hostname != "h1" || m.BlockID != "3" {
			t.Errorf("from %+v", m)
		}
	}
}

// TestMonitorNotAsked: without OnMonitor the welcome does not invite
// monitoring, and a pool that sends it anyway keeps working.
func TestMonitorNotAsked(t *testing.T) {
	ix, s := start(t, interchange.Options{})
	p, wl := joinWelcome(t, ix, wire.Hello{Workers: 1})
	if wl.Monitor {
		t.Fatal("the welcome invites monitoring nobody asked for")
	}
	ix.Enqueue(item(t, 1, 0, 0, false))
	p.tasks(t)
	p.send(t, wire.TMonitor, wire.Monitor{Resources: []wire.ResourceSample{{TaskID: 1}}})
	p.send(t, wire.TResults, wire.Results{Results: []wire.Result{{ID: 1}}})
	if rs := s.wait(t, 1, 2*time.Second); rs[0].Err != nil {
		t.Fatalf("result %+v", rs[0])
	}
}

// TestMonitorMalformed: an undecodable monitoring frame drops the manager
// like any malformed frame, failing its tasks as ManagerLost.
func TestMonitorMalformed(t *testing.T) {
	ix, s := start(t, interchange.Options{OnMonitor: func(interchange.ManagerInfo, *wire.Monitor) {}})
	p, _ := joinWelcome(t, ix, wire.Hello{Workers: 1})
	ix.Enqueue(item(t, 1, 0, 0, false))
	p.tasks(t)
	_ = wire.WriteRaw(p.w, wire.TMonitor, []byte{0xff, 0x00})
	_ = p.w.Flush()
	rs := s.wait(t, 1, 2*time.Second)
	if rs[0].Err == nil || rs[0].Err.Kind != wire.ErrManagerLost {
		t.Fatalf("got %+v, want ErrManagerLost", rs[0])
	}
}
