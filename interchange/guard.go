package interchange

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limits of the per-source guard of the pool address.
const (
	// guardBurst is how many handshakes one source may have in flight or
	// have failed before new connections from it are closed unread. A
	// handshake that authenticates gives its token back, so pools that
	// know the secret are held back only when more than this many of one
	// host (all from 127.0.0.1, say) handshake at the same moment, and
	// those retry; pools on other hosts have buckets of their own.
	guardBurst = 512
	// guardRate is how many failed handshakes per second a source earns
	// back. A TLS handshake costs the interchange about a millisecond of
	// CPU; at this rate a peer that never authenticates costs a few
	// percent of a core instead of half the machine.
	guardRate = 32
	// guardLogEvery is how often failures from one source are logged: the
	// first at once, then a count per period.
	guardLogEvery = time.Minute
	// guardMaxSources bounds the sources tracked; beyond it failures are
	// counted together under "other sources" and full buckets are kept
	// no more.
	guardMaxSources = 4096
)

// guard protects the pool address from peers that do not know the
// secret: a token bucket per source address limits the TLS handshakes
// they make the interchange do, and their failures are logged once per
// source per guardLogEvery with a count instead of once per connection.
type guard struct {
	log *slog.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
	fails   map[string]*failures
}

type bucket struct {
	tokens float64
	last   time.Time
}

type failures struct {
	logged   time.Time // when a line was last written for this source
	n        int       // failed handshakes since then
	rejected int       // connections closed unread since then
	reason   string    // the last failure's reason
}

func newGuard(log *slog.Logger) *guard {
	return &guard{log: log, buckets: map[string]*bucket{}, fails: map[string]*failures{}}
}

// source is the key of a remote address: its IP, and for IPv6 its /64,
// which one host can fill with addresses at will.
func source(a net.Addr) string {
	var ip net.IP
	switch t := a.(type) {
	case *net.TCPAddr:
		ip = t.IP
	default:
		h, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		ip = net.ParseIP(h)
		if ip == nil {
			return h
		}
	}
	if ip.To4() == nil && len(ip) == net.IPv6len {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// admit takes a token for a new connection from src, or reports that the
// connection must be closed before its handshake.
func (g *guard) admit(src string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[src]
	if b == nil {
		if len(g.buckets) >= guardMaxSources {
			g.sweepLocked(now)
		}
		b = &bucket{tokens: guardBurst, last: now}
		if len(g.buckets) < guardMaxSources {
			g.buckets[src] = b
		}
	}
	b.tokens = min(guardBurst, b.tokens+now.Sub(b.last).Seconds()*guardRate)
	b.last = now
	if b.tokens < 1 {
		g.failLocked(src, now, "", true)
		return false
	}
	b.tokens--
	return true
}

// authenticated gives back the token of a connection whose peer proved it
// knows the secret.
func (g *guard) authenticated(src string) {
	g.mu.Lock()
	if b := g.buckets[src]; b != nil {
		b.tokens = min(guardBurst, b.tokens+1)
	}
	g.mu.Unlock()
}

// failed records a connection from src that did not authenticate (its
// token stays spent).
func (g *guard) failed(src, reason string, now time.Time) {
	g.mu.Lock()
	g.failLocked(src, now, reason, false)
	g.mu.Unlock()
}

func (g *guard) failKey(src string) string {
	if _, ok := g.fails[src]; ok || len(g.fails) < guardMaxSources {
		return src
	}
	return "other sources"
}

// failLocked counts a failure (or, with rejected, a connection closed
// unread) of src. The first one of a source is logged at once, the rest
// as a count once per guardLogEvery.
func (g *guard) failLocked(src string, now time.Time, reason string, rejected bool) {
	k := g.failKey(src)
	f := g.fails[k]
	if f == nil {
		f = &failures{}
		g.fails[k] = f
	}
	if rejected {
		f.rejected++
		reason = "too many failed handshakes from this address; closed before the handshake"
	} else {
		f.n++
		f.reason = reason
	}
	switch {
	case f.logged.IsZero():
		g.log.Warn("interchange: a connection that did not authenticate was dropped; more from this address are counted and logged once a minute",
			"source", k, "reason", reason)
		f.logged, f.n, f.rejected = now, 0, 0
	case now.Sub(f.logged) >= guardLogEvery:
		g.reportLocked(k, f, now)
	}
}

// reportLocked writes the count line of source k and starts a new period.
func (g *guard) reportLocked(k string, f *failures, now time.Time) {
	if f.n > 0 || f.rejected > 0 {
		g.log.Warn("interchange: connections that did not authenticate were dropped",
			"source", k, "failed", f.n, "closed_unread", f.rejected, "since", f.logged.Format(time.RFC3339), "last_reason", f.reason)
	}
	f.logged, f.n, f.rejected = now, 0, 0
}

// tick writes the counts due (all of them when final, at Close) and
// forgets sources that are quiet.
func (g *guard) tick(now time.Time, final bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, f := range g.fails {
		if !final && now.Sub(f.logged) < guardLogEvery {
			continue
		}
		if f.n == 0 && f.rejected == 0 {
			delete(g.fails, k)
			continue
		}
		g.reportLocked(k, f, now)
	}
	g.sweepLocked(now)
}

// sweepLocked drops the buckets that have refilled: a new connection
// from their source starts full anyway.
func (g *guard) sweepLocked(now time.Time) {
	for k, b := range g.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*guardRate >= guardBurst {
			delete(g.buckets, k)
		}
	}
}
