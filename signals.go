package parsl

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Signal handling is process-wide by nature, so it is the one piece of
// shared state: the set of open DFKs to close on SIGINT/SIGTERM.
var sig struct {
	mu   sync.Mutex
	open map[*DFK]bool
	ch   chan os.Signal
	stop chan struct{}
}

// signalCloseTimeout bounds how long a signalled Close waits before
// cancelling: a person pressing Ctrl-C wants the program to stop now.
const signalCloseTimeout = 0

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
	sig.ch = make(chan os.Signal, 1)
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
	if len(sig.open) == 0 && sig.ch != nil {
		signal.Stop(sig.ch)
		close(sig.stop)
		sig.ch, sig.stop = nil, nil
	}
}

func handleSignals(ch chan os.Signal, stop chan struct{}) {
	var s os.Signal
	select {
	case s = <-ch:
	case <-stop:
		return
	}
	sig.mu.Lock()
	dfks := make([]*DFK, 0, len(sig.open))
	for d := range sig.open {
		dfks = append(dfks, d)
	}
	sig.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range dfks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Logger().Warn("signal received: closing the DFK", "signal", s.String())
			ctx, cancel := context.WithTimeout(context.Background(), signalCloseTimeout*time.Second)
			defer cancel()
			_ = d.Close(ctx)
		}()
	}
	wg.Wait()
	// End the program as the signal would have, now that nothing is left
	// behind.
	signal.Reset(s)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Signal(s)
	}
}
