package htex_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/internal/certs"
	"github.com/parsl-go/parsl/internal/wire"
)

// syncBuffer is a log destination shared by the run's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// roundTrips runs n tasks one after the other and returns their
// submit-to-result times, sorted.
func roundTrips(t *testing.T, dfk *parsl.DFK, n int) []time.Duration {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		v, err := double.Submit(dfk, parsl.Val(i)).Get(ctx)
		d[i] = time.Since(start)
		if err != nil || v != 2*i {
			t.Fatalf("task %d = %d, %v", i, v, err)
		}
	}
	slices.Sort(d)
	return d
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func pct(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// TestHandshakeFlood floods the pool address from 127.0.0.1 with
// connections that complete TLS (when let) and then fail the secret,
// while a live pool runs tasks one after the other. The pool keeps
// working, the log gets a bounded number of lines, and most of the flood
// is closed before its TLS handshake. The round trips of the live pool
// with and without the flood are logged (figures, not assertions).
// Before the fix every bad connection wrote a log line and had its TLS
// handshake done.
func TestHandshakeFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the interchange for a few seconds")
	}
	var logBuf syncBuffer
	ex := htex.New(fast(htex.Options{Blocks: 1, MaxWorkersPerNode: 1}))
	dfk, err := parsl.Load(ctxT(t, 20*time.Second), parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = dfk.Close(ctx)
		assertNoPools(t, ex)
	})
	pc, err := wire.ReadPoolConfig(ex.PoolConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if pc.CAFile == "" {
		t.Fatal("the pool configuration has no CA: the test needs TLS")
	}
	tc, err := certs.ClientConfig(pc.CAFile, certs.ServerName)
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.Addresses[0]

	roundTrips(t, dfk, 50) // warm up
	quiet := roundTrips(t, dfk, 400)

	const (
		flooders   = 4
		floodRate  = 600 // connections per second, all flooders together
		maxConns   = 20000
		maxFlood   = 4 * time.Second
		badLogLine = "did not authenticate"
	)
	linesBefore := strings.Count(logBuf.String(), "\n")
	var (
		conns, handshakes atomic.Int64
		wg                sync.WaitGroup
	)
	stop := make(chan struct{})
	floodStart := time.Now()
	for range flooders {
		wg.Go(func() {
			// Paced at the rate of the flood in the issue (~600/s in all),
			// so that the flooder's own CPU is the same with and without
			// the guard; its connections are made as fast as that allows.
			tick := time.NewTicker(time.Second / floodRate * flooders)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if conns.Add(1) > maxConns || time.Since(floodStart) > maxFlood {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					continue
				}
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				tconn := tls.Client(c, tc)
				if tconn.Handshake() == nil {
					handshakes.Add(1)
					_, _ = wire.ClientHandshake(bufio.NewReader(tconn), bufio.NewWriter(tconn), []byte("not the run's secret"), wire.Hello{Manager: "intruder"})
				}
				c.Close()
			}
		})
	}
	// Round trips for as long as the flood lasts, so that they sample it
	// all: the first burst the guard lets through and what follows.
	floodDone := make(chan struct{})
	go func() { wg.Wait(); close(floodDone) }()
	var flooded, steady []time.Duration
	for len(flooded) < 400 || !isClosed(floodDone) {
		d := roundTrips(t, dfk, 50)
		flooded = append(flooded, d...)
		if time.Since(floodStart) > time.Second {
			// After the burst the guard lets through at first.
			steady = append(steady, d...)
		}
	}
	close(stop)
	<-floodDone
	slices.Sort(flooded)
	slices.Sort(steady)
	floodFor := time.Since(floodStart)
	n := min(conns.Load(), maxConns)

	logText := logBuf.String()
	bad := strings.Count(logText, badLogLine)
	lines := strings.Count(logText, "\n") - linesBefore
	t.Logf("flood: %d connections in %s (%.0f/s), %d TLS handshakes done by the interchange (%.0f/s); %d log lines (%d about them), %d bytes of log",
		n, floodFor.Round(time.Millisecond), float64(n)/floodFor.Seconds(), handshakes.Load(), float64(handshakes.Load())/floodFor.Seconds(), lines, bad, len(logText))
	t.Logf("live pool round trip: quiet p50 %s p99 %s (%d tasks); whole flood p50 %s p90 %s p99 %s (%d tasks); after its first second p50 %s p90 %s p99 %s (%d tasks)",
		pct(quiet, 0.5), pct(quiet, 0.99), len(quiet), pct(flooded, 0.5), pct(flooded, 0.9), pct(flooded, 0.99), len(flooded),
		pct(steady, 0.5), pct(steady, 0.9), pct(steady, 0.99), len(steady))
	if n < 500 {
		t.Fatalf("the flood made only %d connections; the test needs more", n)
	}
	// One line when the flood starts; a count per minute after that.
	if bad > 3 || lines > 20 {
		t.Errorf("%d log lines (%d about bad connections) for %d bad connections, want a bounded few; log:\n%.3000s", lines, bad, n, logText)
	}
	// The guard lets a burst of 512 through, then 32 a second; twice that
	// leaves room for handshakes in flight.
	if h, limit := handshakes.Load(), int64(512+64*floodFor.Seconds()); h > limit && h > n/2 {
		t.Errorf("the interchange did the TLS handshake of %d of %d bad connections; want at most %d, the rest closed before it", h, n, limit)
	}
	if ms := ex.Managers(); len(ms) != 1 {
		t.Errorf("%d managers after the flood, want the one live pool", len(ms))
	}
}
