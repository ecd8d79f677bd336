package wire

import (
	"bufio"
	"bytes"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/codec"
)

func TestMonitorRoundTrip(t *testing.T) {
	msgs := []struct {
		typ Type
		v   any
		out any
	}{
		{TMonitor, &Monitor{Node: &NodeInfo{CPUs: 8, MemoryBytes: 16 << 30, Runtime: "go1.26"}}, &Monitor{}},
		{TMonitor, &Monitor{Resources: []ResourceSample{{TaskID: 3, Try: 1, Time: 1700000000123456789, PID: 99, Processes: 3,
			Threads: 4, UserSeconds: 1.5, SystemSeconds: 0.25, RSS: 1 << 20, VMS: 1 << 24, MemoryPercent: 0.5, ReadBytes: 10,
			WriteBytes: 20, IOKnown: true, CtxVoluntary: 5, CtxInvoluntary: 6, Status: "sleeping", CPU: 1, Interval: time.Second}}}, &Monitor{}},
		{TMonitorFrom, &MonitorFrom{From: ManagerState{ID: "1", Name: "m", Hostname: "h", BlockID: "0", Workers: 2},
			Monitor: Monitor{Resources: []ResourceSample{{TaskID: 1, Pool: true, PID: 7}}}}, &MonitorFrom{}},
	}
	for _, m := range msgs {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := WriteFrame(w, m.typ, m.v); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		typ, p, err := ReadFrame(bufio.NewReader(&b), 0)
		if err != nil || typ != m.typ {
			t.Fatalf("read %s, %v; want %s", typ, err, m.typ)
		}
		if err := Decode(typ, p, m.out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.out, m.v) {
			t.Errorf("%s: got %+v, want %+v", typ, m.out, m.v)
		}
	}
	if TMonitor.String() != "monitor" || TMonitorFrom.String() != "monitor-from" {
		t.Errorf("names %q %q", TMonitor, TMonitorFrom)
	}
}

// TestWelcomeMonitorCompatible: the welcome's Monitor field is invisible
// to a peer that predates it, and absent from an older interchange's
// welcome, in both directions without breaking the handshake.
func TestWelcomeMonitorCompatible(t *testing.T) {
	type oldWelcome struct {
		HeartbeatPeriod    time.Duration `cbor:"hp"`
		HeartbeatThreshold time.Duration `cbor:"ht"`
		MAC                []byte        `cbor:"mac"`
	}
	b, err := codec.Marshal(Welcome{HeartbeatPeriod: time.Second, Monitor: true, MAC: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	var old oldWelcome
	if err := codec.Unmarshal(b, &old); err != nil || old.HeartbeatPeriod != time.Second {
		t.Fatalf("an older pool reads the new welcome as %+v, %v", old, err)
	}
	b, err = codec.Marshal(oldWelcome{HeartbeatPeriod: time.Second, MAC: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	var w Welcome
	if err := codec.Unmarshal(b, &w); err != nil || w.Monitor {
		t.Fatalf("an older interchange's welcome reads as %+v, %v", w, err)
	}
	// Through the handshake: the server's choice reaches the client.
	for _, mon := range []bool{false, true} {
		a, b := net.Pipe()
		secret := []byte("secret")
		errc := make(chan error, 1)
		go func() {
			_, err := ServerHandshake(bufio.NewReader(a), bufio.NewWriter(a), secret, Expect{}, Welcome{Monitor: mon})
			errc <- err
		}()
		wl, err := ClientHandshake(bufio.NewReader(b), bufio.NewWriter(b), secret, Hello{Manager: "m"})
		if serr := <-errc; err != nil || serr != nil {
			t.Fatalf("handshake: client %v, server %v", err, serr)
		}
		a.Close()
		b.Close()
		if wl.Monitor != mon {
			t.Errorf("client saw Monitor %v, server sent %v", wl.Monitor, mon)
		}
	}
}

// FuzzMonitor decodes arbitrary payloads as the monitoring messages: none
// may panic, and the decoder's limits hold.
func FuzzMonitor(f *testing.F) {
	for _, v := range []any{
		Monitor{Node: &NodeInfo{CPUs: 2}},
		Monitor{Resources: []ResourceSample{{TaskID: 1, RSS: 5, Status: "running"}}},
		MonitorFrom{From: ManagerState{ID: "1"}, Monitor: Monitor{Resources: []ResourceSample{{TaskID: 2}}}},
	} {
		b, err := codec.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x61, 'r', 0x9a, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		var m Monitor
		if Decode(TMonitor, p, &m) == nil && len(m.Resources) > codec.MaxArrayElements {
			t.Fatalf("%d samples decoded, above the array limit", len(m.Resources))
		}
		var mf MonitorFrom
		_ = Decode(TMonitorFrom, p, &mf)
	})
}
