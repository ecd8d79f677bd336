package interchange_test

import (
	"testing"
	"time"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/wire"
)

// BenchmarkRoundTrip measures one task through the interchange to a pool
// that answers at once (in this process, plain TCP on loopback) and back.
func BenchmarkRoundTrip(b *testing.B) {
	got := make(chan struct{}, 1)
	ix, err := interchange.New(interchange.Options{Secret: secret, Deliver: func([]wire.Result, interchange.ManagerInfo) { got <- struct{}{} }})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	p := join(b, ix, wire.Hello{Workers: 1})
	_ = p.c.SetDeadline(time.Time{})
	go func() {
		for {
			typ, pl, err := wire.ReadFrame(p.r, 0)
			if err != nil {
				return
			}
			if typ != wire.TTasks {
				continue
			}
			var ts wire.Tasks
			_ = wire.Decode(typ, pl, &ts)
			rs := wire.Results{}
			for _, x := range ts.Tasks {
				rs.Results = append(rs.Results, wire.Result{ID: x.ID, Result: []byte{7}})
			}
			_ = wire.WriteFrame(p.w, wire.TResults, rs)
			_ = p.w.Flush()
		}
	}()
	items := make([]interchange.Item, b.N)
	for i := range items {
		items[i] = item(b, int64(i), 0, 0, false)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ix.Enqueue(items[i])
		<-got
	}
	b.StopTimer()
	p.c.Close()
}
