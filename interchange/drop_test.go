package interchange_test

import (
	"testing"
	"time"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/wire"
)

// TestDroppedManagerLateFramesRefused: a pool that went silent (stopped)
// is dropped at the heartbeat threshold and its task retried on another
// pool. When it wakes up, its late result and heartbeat on the old
// connection are not taken (the connection is closed), nor is the late
// result when it comes again over a new connection under the same manager
// name: the task's outcome is delivered once, by the pool that holds it.
func TestDroppedManagerLateFramesRefused(t *testing.T) {
	ix, s := start(t, interchange.Options{HeartbeatThreshold: 300 * time.Millisecond})
	p := join(t, ix, wire.Hello{Manager: "stalled", Workers: 1})
	ix.Enqueue(item(t, 9, 0, 0, false))
	if got := ids(p.tasks(t)); !equal(got, []int64{9}) {
		t.Fatalf("stalled pool got %v", got)
	}
	rs := s.wait(t, 1, 3*time.Second)
	if rs[0].ID != 9 || rs[0].Err == nil || rs[0].Err.Kind != wire.ErrManagerLost {
		t.Fatalf("got %+v, want task 9 failed with ErrManagerLost", rs[0])
	}

	// The kernel retries the task; another pool takes it.
	wt := wire.Task{ID: 9, Try: 1, App: "a"}
	b, err := codec.Marshal(&wt)
	if err != nil {
		t.Fatal(err)
	}
	ix.Enqueue(interchange.Item{ID: 9, Try: 1, Payload: b})
	q := join(t, ix, wire.Hello{Manager: "fresh", Workers: 1})
	if ts := q.tasks(t); len(ts) != 1 || ts[0].ID != 9 || ts[0].Try != 1 {
		t.Fatalf("fresh pool got %+v, want task 9 try 1", ts)
	}

	// The stalled pool wakes up: its frames go nowhere, and the interchange
	// has closed its connection.
	late := wire.Results{Results: []wire.Result{{ID: 9, Try: 0, Result: []byte{0x01}}}}
	_ = wire.WriteFrame(p.w, wire.TResults, late)
	_ = wire.WriteFrame(p.w, wire.THeartbeat, nil)
	_ = p.w.Flush()
	_ = p.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		typ, _, err := wire.ReadFrame(p.r, 0)
		if err != nil {
			break // closed (EOF or reset): what a dropped manager must see
		}
		if typ == wire.TTasks {
			t.Fatal("the dropped manager's connection got tasks after the drop")
		}
	}
	// And over a new connection under the same name, the late result is
	// stale: this manager holds no task.
	p2 := join(t, ix, wire.Hello{Manager: "stalled", Workers: 1})
	p2.send(t, wire.TResults, late)

	q.send(t, wire.TResults, wire.Results{Results: []wire.Result{{ID: 9, Try: 1, Result: []byte{0x02}}}})
	s.wait(t, 2, 3*time.Second)
	// The shutdown that answers p2's drain comes after its late result was
	// read, so that result has been judged by the check below.
	p2.send(t, wire.TDrain, nil)
	if seen := p2.quiet(t, 500*time.Millisecond); len(seen) == 0 || seen[len(seen)-1] != wire.TShutdown {
		t.Fatalf("re-joined pool: got %v, want the shutdown that answers its drain", seen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 2 || s.got[1].ID != 9 || s.got[1].Try != 1 || s.got[1].Err != nil {
		t.Fatalf("delivered %+v, want the ManagerLost of try 0 and the result of try 1 only", s.got)
	}
}
