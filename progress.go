package parsl

import (
	"io"
	"os"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/parsl-go/parsl/internal/dataflow"
)

// progressBar draws the workflow's progress on a terminal: tasks done,
// failed and running, the rate and an ETA. It is fed by the kernel's events
// and only counts, so it costs a few atomic adds per task.
type progressBar struct {
	p                   *mpb.Progress
	bar                 *mpb.Bar
	total, done, failed atomic.Int64
}

// newProgressBar returns nil when w is not a terminal: progress output
// would only clutter logs and pipes.
func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios); err != nil {
		return nil
	}
	return startProgressBar(f)
}

func startProgressBar(w io.Writer) *progressBar {
	pb := &progressBar{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())}
	pb.bar = pb.p.AddBar(0,
		mpb.PrependDecorators(decor.Name("parsl "), decor.CountersNoUnit("%d/%d", decor.WCSyncSpace)),
		mpb.AppendDecorators(
			decor.Any(func(decor.Statistics) string {
				return " failed " + itoa(pb.failed.Load()) + " running " + itoa(pb.total.Load()-pb.done.Load()-pb.failed.Load())
			}),
			decor.AverageSpeed(0, " %.0f tasks/s", decor.WCSyncSpace),
			decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace),
		),
	)
	return pb
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// TaskEvent implements dataflow.Observer.
func (pb *progressBar) TaskEvent(e dataflow.Event) {
	switch {
	case e.State == dataflow.Pending && e.Try == 0: // a new task (retries come back with Try > 0)
		pb.bar.SetTotal(pb.total.Add(1), false)
	case e.State == dataflow.ExecDone || e.State == dataflow.MemoDone:
		pb.done.Add(1)
		pb.bar.Increment()
	case e.State == dataflow.Failed || e.State == dataflow.DepFail:
		pb.failed.Add(1)
		pb.bar.Increment()
	}
}

// close completes the bar and waits for its last frame.
func (pb *progressBar) close() {
	pb.bar.SetTotal(pb.total.Load(), true)
	pb.p.Wait()
}

// observers fans kernel events out to several observers.
type observers []dataflow.Observer

func (o observers) TaskEvent(e dataflow.Event) {
	for _, x := range o {
		x.TaskEvent(e)
	}
}
