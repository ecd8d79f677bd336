package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/parsl-go/parsl/internal/httpserve"
)

// ListenError is returned by Listen when the address cannot be bound, for
// instance because another process holds the port.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("metrics: cannot listen on %s: %v", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Server serves a Collector at /metrics over HTTP.
//
// Binding (Listen) and serving (Serve) are separate so that a caller can
// fail early on a busy port, before starting anything costly, yet answer
// scrapes only once what the metrics read (executors) is running.
type Server struct {
	s *httpserve.Server
}

// Listen binds addr ("host:port"; port 0 picks a free one) for c's
// metrics. It does not serve until Serve is called.
//
// The endpoint has no authentication. A request whose Host header is not
// an address of the server gets 421, which keeps web pages of other sites
// from reading it through DNS rebinding: on a loopback address only
// loopback names are accepted (at any port, for ssh tunnels), on a
// specific address that address, this machine's host name and the
// address's reverse-DNS names, and on all interfaces (":9090",
// "0.0.0.0:9090") any Host, so a scraper that reaches the server by
// another name needs that form.
func Listen(addr string, c *Collector) (*Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", c.Handler())
	s, err := httpserve.Listen(addr, mux, httpserve.Options{WriteTimeout: 30 * time.Second})
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: err}
	}
	return &Server{s: s}, nil
}

// Addr returns the address bound, with the real port when Listen was
// given port 0.
func (s *Server) Addr() net.Addr { return s.s.Addr() }

// Serve starts answering requests in a goroutine; Close stops it.
func (s *Server) Serve() { s.s.Serve() }

// Close stops the server: it lets requests in progress finish until ctx
// ends, then closes their connections, and waits for the serving
// goroutine. A server never served just releases its port. Later calls
// return the first call's result.
func (s *Server) Close(ctx context.Context) error {
	if err := s.s.Close(ctx); err != nil {
		return fmt.Errorf("metrics: stopping the server on %s: %w", s.s.Addr(), err)
	}
	return nil
}
