package workerpool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ConnectError is returned when no interchange address answered before the
// heartbeat threshold passed, or every address kept refusing connections
// for RefusedGiveUp.
type ConnectError struct {
	Addresses []string
	Waited    time.Duration
	// Refused is true when every address refused the connection (its host
	// answered, nothing listened on the port) for RefusedGiveUp: the
	// interchange has exited.
	Refused bool
	// Err is the last dial error seen.
	Err error
}

// Error names the addresses tried and what to check.
func (e *ConnectError) Error() string {
	if e.Refused {
		return fmt.Sprintf("parsl pool: every interchange address refused the connection for %s (tried %s): %v; the interchange is not running (its driver has probably exited), so this pool exits",
			e.Waited, strings.Join(e.Addresses, ", "), e.Err)
	}
	return fmt.Sprintf("parsl pool: no interchange address answered within %s (tried %s): %v; check that the driver is running and that this node can reach it (firewall, address list in the pool configuration)",
		e.Waited, strings.Join(e.Addresses, ", "), e.Err)
}

// RefusedGiveUp is how long a starting pool keeps dialing when every
// address refuses the connection. An interchange listens before any pool
// of its run is started and until the run ends, so refusals mean it is
// gone; retrying for the whole heartbeat threshold would only keep a pool
// of a dead run (and its node, in a batch job) busy for minutes. Silent
// addresses (dropped packets, a network still coming up) are retried for
// the whole threshold.
const RefusedGiveUp = 10 * time.Second

// Unwrap returns the last dial error.
func (e *ConnectError) Unwrap() error { return e.Err }

// readSecret reads the run's HMAC secret, stored as hex.
func readSecret(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("parsl pool: the configuration names no secret_file; the driver writes one per run")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("parsl pool: reading the run secret: %w; the driver writes it at start, check that the path is readable from this node", err)
	}
	s, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("parsl pool: run secret %s is not hex: %w", path, err)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("parsl pool: run secret %s is empty", path)
	}
	return s, nil
}

// tlsConfig returns the client TLS configuration, or nil for plain TCP.
func tlsConfig(caFile, serverName string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("parsl pool: reading the run's CA certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("parsl pool: CA file %s holds no PEM certificate", caFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: serverName}, nil
}

// dial connects to the first interchange address that answers. All
// addresses are tried at once in each round, because an address that drops
// packets (a firewalled interface) would otherwise hold up the good ones
// for a whole timeout; rounds repeat with backoff until within has passed.
func dial(ctx context.Context, addrs []string, within time.Duration, tc *tls.Config) (net.Conn, error) {
	start := time.Now()
	deadline := start.Add(within)
	backoff := 50 * time.Millisecond
	var (
		last         error
		refusedSince time.Time // start of the current run of all-refused rounds
	)
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, &ConnectError{Addresses: addrs, Waited: time.Since(start).Round(time.Millisecond), Err: last}
		}
		conn, addr, err := dialRound(ctx, addrs, min(remaining, 10*time.Second))
		switch {
		case err == nil || !allRefused(err):
			refusedSince = time.Time{}
		case refusedSince.IsZero():
			refusedSince = time.Now()
		case time.Since(refusedSince) >= RefusedGiveUp:
			return nil, &ConnectError{Addresses: addrs, Waited: time.Since(start).Round(time.Millisecond), Refused: true, Err: err}
		}
		if err == nil {
			if tc == nil {
				return conn, nil
			}
			c := tc.Clone()
			if c.ServerName == "" {
				c.ServerName, _, _ = net.SplitHostPort(addr)
			}
			tconn := tls.Client(conn, c)
			hctx, cancel := context.WithDeadline(ctx, deadline.Add(10*time.Second))
			err = tconn.HandshakeContext(hctx)
			cancel()
			if err == nil {
				return tconn, nil
			}
			conn.Close()
			if !closedByPeer(err) {
				// A certificate that does not verify will not verify on
				// the next try either: fail now with the reason.
				return nil, fmt.Errorf("parsl pool: TLS handshake with the interchange at %s failed: %w; the pool must use the CA file of the current run", addr, err)
			}
			// Closed before the handshake: the interchange limits the
			// handshakes of each source address, and this host's pools
			// (or a peer flooding it from here) used them up. Try again.
			err = fmt.Errorf("the interchange at %s closed the connection before the TLS handshake: %w", addr, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("parsl pool: connecting to the interchange: %w", ctx.Err())
		}
		last = err
		wait := min(backoff, time.Until(deadline))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("parsl pool: connecting to the interchange: %w", ctx.Err())
			case <-t.C:
			}
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// closedByPeer reports whether a handshake failed because the other side
// closed or reset the connection, rather than on what it sent.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// allRefused reports whether every error joined in err (one per address,
// from dialRound) is a refused connection.
func allRefused(err error) bool {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		if !errors.Is(e, syscall.ECONNREFUSED) {
			return false
		}
	}
	return len(errs) > 0
}

// dialRound dials every address concurrently and keeps the first
// connection; it waits for every dialing goroutine before returning.
func dialRound(ctx context.Context, addrs []string, timeout time.Duration) (net.Conn, string, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type dialed struct {
		conn net.Conn
		addr string
		err  error
	}
	ch := make(chan dialed, len(addrs))
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Go(func() {
			var d net.Dialer
			c, err := d.DialContext(rctx, "tcp", a)
			ch <- dialed{c, a, err}
		})
	}
	var (
		win  dialed
		errs []error
	)
	for range addrs {
		r := <-ch
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case win.conn == nil:
			win = r
			cancel() // the others are no longer needed
		default:
			r.conn.Close()
		}
	}
	wg.Wait()
	if win.conn != nil {
		return win.conn, win.addr, nil
	}
	return nil, "", errors.Join(errs...)
}
