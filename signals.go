package parsl

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parsl-go/parsl/internal/failure"
)

// Signal handling is process-wide by nature, so it is the one piece of
// shared state: the set of open DFKs to close on SIGINT/SIGTERM.
var sig struct {
	mu   sync.Mutex
	open map[*DFK]bool
	ch   chan os.Signal
	stop chan struct{}
}

// dying is set once a signal is being handled: the process is going to end
// as the signal would have. From then on the user's goroutines that would
// learn of the cancellation (Get of a cancelled task, Wait, Close) block
// instead, so that main cannot return and exit with status 0 before the
// handler has finished closing and re-raised the signal.
var dying atomic.Bool

// never is never closed: what blocks on it waits for the process to end.
var never = make(chan struct{})

// signalFlushTimeout bounds how long a signalled Close spends writing the
// monitoring database after the tasks are cancelled. A second signal cuts
// it short.
const signalFlushTimeout = 10 * time.Second

func watchSignals(d *DFK) {
	sig.mu.Lock()
	defer sig.mu.Unlock()
	if sig.open == nil {
		sig.open = map[*DFK]bool{}
	}
	sig.open[d] = true
	if sig.ch != nil {
		return
	}
	sig.ch = make(chan os.Signal, 2)
	sig.stop = make(chan struct{})
	signal.Notify(sig.ch, syscall.SIGINT, syscall.SIGTERM)
	go handleSignals(sig.ch, sig.stop)
}

func unwatchSignals(d *DFK) {
	sig.mu.Lock()
	defer sig.mu.Unlock()
	if !sig.open[d] {
		return
	}
	delete(sig.open, d)
	if len(sig.open) == 0 && sig.ch != nil && !dying.Load() {
		signal.Stop(sig.ch)
		close(sig.stop)
		sig.ch, sig.stop = nil, nil
	}
}

// awaitDeath blocks for good when a signal is ending the process, and
// returns at once otherwise.
func awaitDeath() {
	if dying.Load() {
		<-never
	}
}

// signalName is the conventional name of a signal, as users type it.
func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// handleSignals owns the process's SIGINT/SIGTERM from the first Load until
// the last Close. The first signal closes every open DFK (tasks cancelled
// at once, the checkpoint and the monitoring database written, bounded by
// signalFlushTimeout) and then ends the process by the same signal; a
// second signal ends it at once.
func handleSignals(ch chan os.Signal, stop chan struct{}) {
	var s os.Signal
	select {
	case s = <-ch:
	case <-stop:
		return
	}
	dying.Store(true)
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), signalFlushTimeout)
	defer cancelFlush()
	go func() {
		// The person pressing Ctrl-C twice means it. The goroutine lives
		// until the process ends, which is at most signalFlushTimeout away.
		s2 := <-ch
		fmt.Fprintf(os.Stderr, "parsl: second signal (%s): stopping now\n", signalName(s2))
		die(s2)
	}()
	sig.mu.Lock()
	dfks := make([]*DFK, 0, len(sig.open))
	for d := range sig.open {
		dfks = append(dfks, d)
	}
	sig.mu.Unlock()
	name := signalName(s)
	if len(dfks) > 0 {
		fmt.Fprintf(os.Stderr, "parsl: %s: closing (a second signal stops at once)\n", name)
	}
	var wg sync.WaitGroup
	for _, d := range dfks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Logger().Warn("signal received: closing the DFK", "signal", name)
			d.k.SetCancelCause(name)
			// The tasks are cancelled at once: a person pressing Ctrl-C
			// wants the program to stop now.
			taskCtx, cancel := context.WithCancel(context.Background())
			cancel()
			err := d.closeWith(taskCtx, flushCtx)
			msg := fmt.Sprintf("parsl: %s: closed the run in %s", name, d.runDir)
			switch n := d.k.Cancelled(); n {
			case 0:
			case 1:
				msg += "; 1 task cancelled by " + name
			default:
				msg += fmt.Sprintf("; %s tasks cancelled by %s", failure.Count(int(n)), name)
			}
			fmt.Fprintln(os.Stderr, msg)
			if err != nil {
				fmt.Fprintf(os.Stderr, "parsl: %s: closing: %v\n", name, err)
			}
		}()
	}
	wg.Wait()
	die(s)
}

// die ends the process as signal s would have: the default action is
// restored and the signal raised again, so the exit status says "killed by
// SIGINT" (130 in a shell), as scripts and schedulers expect.
func die(s os.Signal) {
	signal.Reset(s)
	if ss, ok := s.(syscall.Signal); ok {
		_ = syscall.Kill(os.Getpid(), ss)
		// Delivery is asynchronous; should it not end the process (the
		// signal blocked in some thread), exit with the shell's status.
		time.Sleep(2 * time.Second)
		os.Exit(128 + int(ss))
	}
	os.Exit(1)
}
