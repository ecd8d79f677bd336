package main

import (
	"io"
	"os"
	"sync/atomic"
	"text/tabwriter"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"
)

// progress shows which step of a perf run is under way. Steps are counted
// between timed sections, never inside them, so the bar costs nothing in
// the numbers.
type progress interface {
	step(name string)
	finish(ok bool)
}

// newProgress returns an mpb bar on w when w is a terminal (stderr of an
// interactive run), and a silent progress otherwise.
func newProgress(w io.Writer, steps int) progress {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return nopProgress{}
	}
	return newBar(f, steps)
}

func newBar(w io.Writer, steps int) *barProgress {
	b := &barProgress{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))}
	b.name.Store("starting")
	b.bar = b.p.AddBar(int64(steps),
		mpb.PrependDecorators(decor.Name("parsl perf "), decor.CountersNoUnit("%d/%d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace),
			decor.Any(func(decor.Statistics) string { return " " + b.name.Load().(string) })),
		mpb.BarRemoveOnComplete(),
	)
	return b
}

// isTerminal asks the tty driver, because a character device such as
// /dev/null is not a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}

type nopProgress struct{}

func (nopProgress) step(string) {}
func (nopProgress) finish(bool) {}

type barProgress struct {
	p     *mpb.Progress
	bar   *mpb.Bar
	name  atomic.Value // string
	steps int
}

func (b *barProgress) step(name string) {
	if b.steps > 0 {
		b.bar.Increment()
	}
	b.steps++
	b.name.Store(name)
}

func (b *barProgress) finish(ok bool) {
	if ok {
		b.bar.SetTotal(-1, true) // complete: the bar removes itself
	} else {
		b.bar.Abort(true)
	}
	b.p.Wait()
}

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
}
