// Package dashboard serves the monitoring database as web pages: the
// workflows of a database, one workflow's state counts and per-app
// summary, its tasks (paged, filtered by app and state), a Gantt chart of
// task states, the dependency graph grouped by app or state, resource
// usage, and one task with its tries, errors and memory over time.
//
// Pages are rendered on the server as HTML with inline SVG charts; a small
// script of our own (embedded, nothing is loaded from the internet) keeps
// the pages of a running workflow current through server-sent events. The
// same server runs from `parsl visualize` over a finished run's database
// and inside a running driver when parsl.MonitoringConfig.DashboardAddr is
// set.
//
// The dashboard has no authentication, so it defends itself against the
// pages of other sites: every response carries a Content-Security-Policy
// that allows no inline script or style (the pages have none: colours are
// classes, charts SVG attributes) and no framing, Listen refuses requests
// whose Host header is not an address of the server (DNS rebinding), and
// the live-update streams are capped (Options.MaxStreams).
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/parsl-go/parsl/internal/httpserve"
	"github.com/parsl-go/parsl/monitoring/store"
)

// Options configures a dashboard. Store is required.
type Options struct {
	// Store is the monitoring database the pages read.
	Store *store.Store
	// Metrics, when set, is served at /metrics (a Prometheus handler).
	Metrics http.Handler
	// LiveInterval is how often the event stream of a running workflow
	// sends its counts; default 1 s.
	LiveInterval time.Duration
	// Logger receives request errors; default slog.Default().
	Logger *slog.Logger
	// MaxStreams bounds the live-update streams (server-sent events) open
	// at once, as each holds a connection and reads the database every
	// LiveInterval; default 64. A stream asked for beyond it gets 503
	// with Retry-After, and the page retries later.
	MaxStreams int
	// MaxStreamsPerClient bounds the streams of one client address
	// (one per open page; a browser opens at most six to a server
	// anyway); default 16. Behind a reverse proxy all clients share its
	// address, so raise it there.
	MaxStreamsPerClient int
	// AllowedHosts are names, besides the listen address, that Listen's
	// server accepts in the Host header, e.g. a reverse proxy's; "*"
	// accepts any. See Listen.
	AllowedHosts []string
}

// Defaults of Options.
const (
	DefaultMaxStreams          = 64
	DefaultMaxStreamsPerClient = 16
)

// Handler serves the dashboard's pages. It is an http.Handler, so that it
// can be mounted in a program's own server; Listen wraps it in one.
type Handler struct {
	opts Options
	mux  *http.ServeMux
	// quit ends the event streams, which would otherwise hold a graceful
	// shutdown until their clients leave.
	quit     chan struct{}
	quitOnce sync.Once

	// done caches what whole-run scans computed for finished runs, which
	// never change: a second look at a million-task run's DAG or summary
	// is free.
	mu   sync.Mutex
	done map[string]any

	// streams counts the open event streams, in all and per client
	// address.
	streamMu  sync.Mutex
	streams   int
	perClient map[string]int
}

// cacheLimit bounds the cache; it is emptied when full.
const cacheLimit = 64

// cached returns the value for key of a finished run wf, computing and
// keeping it; for a running workflow it always computes.
func cached[T any](h *Handler, wf runInfo, key string, compute func() (T, error)) (T, error) {
	if wf.running {
		return compute()
	}
	key = wf.id + "\x00" + key
	h.mu.Lock()
	v, ok := h.done[key]
	h.mu.Unlock()
	if ok {
		return v.(T), nil
	}
	t, err := compute()
	if err != nil {
		return t, err
	}
	h.mu.Lock()
	if len(h.done) >= cacheLimit {
		clear(h.done)
	}
	h.done[key] = t
	h.mu.Unlock()
	return t, nil
}

type runInfo struct {
	id      string
	running bool
}

// New returns the dashboard handler for opts.
func New(opts Options) (*Handler, error) {
	if opts.Store == nil {
		return nil, errors.New("dashboard: Options.Store is nil: open the monitoring database with store.Open first")
	}
	if opts.LiveInterval <= 0 {
		opts.LiveInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.MaxStreamsPerClient <= 0 {
		opts.MaxStreamsPerClient = DefaultMaxStreamsPerClient
	}
	h := &Handler{opts: opts, mux: http.NewServeMux(), quit: make(chan struct{}), done: map[string]any{},
		perClient: map[string]int{}}
	h.routes()
	return h, nil
}

// ServeHTTP implements http.Handler. Every response carries the security
// headers (a Content-Security-Policy that allows no inline script or
// style, no framing, nosniff, no referrer), also when the handler is
// mounted in another server; the Host check is Listen's.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpserve.SetSecurityHeaders(w.Header())
	h.mux.ServeHTTP(w, r)
}

// openStream counts a new event stream of the client of r, and returns
// the func that releases it, or nil and the reason when a limit is
// reached.
func (h *Handler) openStream(r *http.Request) (release func(), refused string) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	h.streamMu.Lock()
	defer h.streamMu.Unlock()
	switch {
	case h.streams >= h.opts.MaxStreams:
		return nil, fmt.Sprintf("The dashboard has %d live-update streams open, its limit (dashboard.Options.MaxStreams); "+
			"the page will try again. Close other dashboard pages to free one.", h.streams)
	case h.perClient[client] >= h.opts.MaxStreamsPerClient:
		return nil, fmt.Sprintf("Your address %s has %d live-update streams open, its limit (dashboard.Options.MaxStreamsPerClient); "+
			"the page will try again. Close other dashboard pages to free one.", client, h.perClient[client])
	}
	h.streams++
	h.perClient[client]++
	return func() {
		h.streamMu.Lock()
		defer h.streamMu.Unlock()
		h.streams--
		if h.perClient[client]--; h.perClient[client] == 0 {
			delete(h.perClient, client)
		}
	}, ""
}

// stop ends the open event streams.
func (h *Handler) stop() { h.quitOnce.Do(func() { close(h.quit) }) }

// ListenError is returned by Listen when the address cannot be bound.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("dashboard: cannot listen on %s: %v (choose another address or port 0)", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Server serves a Handler over HTTP. Binding (Listen) and serving (Serve)
// are separate so that a driver fails early on a busy port, before it
// starts anything costly.
type Server struct {
	s *httpserve.Server
}

// Listen binds addr ("host:port"; port 0 picks a free port) for h. The
// dashboard has no authentication: give a loopback address unless the
// pages may be seen by the network.
//
// A request whose Host header is not an address of the server gets 421
// Misdirected Request, which keeps pages of other sites from reading the
// dashboard through DNS rebinding: on a loopback address only loopback
// names are accepted (localhost, 127.0.0.1, [::1], at any port, for ssh
// tunnels), on a specific address that address, this machine's host name
// and the address's reverse-DNS names, and on all interfaces (":8080",
// "0.0.0.0:8080") any Host. Options.AllowedHosts adds names, e.g. for a
// reverse proxy.
func Listen(addr string, h *Handler) (*Server, error) {
	// No write timeout: event streams are long, and bound each write
	// themselves; pages bound their own work with the request's context.
	// Close ends the streams first, which would otherwise hold a graceful
	// shutdown until their clients leave.
	s, err := httpserve.Listen(addr, h, httpserve.Options{Before: h.stop, AllowedHosts: h.opts.AllowedHosts})
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: err}
	}
	return &Server{s: s}, nil
}

// Addr returns the bound address, with the real port when Listen was given
// port 0.
func (s *Server) Addr() net.Addr { return s.s.Addr() }

// URL returns the dashboard's address as an http URL.
func (s *Server) URL() string { return "http://" + s.s.Addr().String() + "/" }

// Serve answers requests in a goroutine until Close.
func (s *Server) Serve() { s.s.Serve() }

// Close ends the event streams, lets other requests finish until ctx ends,
// then cuts them off and waits for the serving goroutine. Later calls
// return the first call's result.
func (s *Server) Close(ctx context.Context) error {
	if err := s.s.Close(ctx); err != nil {
		return fmt.Errorf("dashboard: stopping the server on %s: %w", s.s.Addr(), err)
	}
	return nil
}
