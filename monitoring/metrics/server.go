package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
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
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	err  error

	closeOnce sync.Once
	closeErr  error
}

// Listen binds addr ("host:port"; port 0 picks a free one) for c's
// metrics. It does not serve until Serve is called.
func Listen(addr string, c *Collector) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: err}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", c.Handler())
	return &Server{ln: ln, srv: &http.Server{
		Handler: mux,
		// A scraper that stalls must not hold a goroutine and a socket
		// for ever.
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}}, nil
}

// Addr returns the address bound, with the real port when Listen was
// given port 0.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve starts answering requests in a goroutine; Close stops it.
func (s *Server) Serve() {
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
}

// Close stops the server: it lets requests in progress finish until ctx
// ends, then closes their connections, and waits for the serving
// goroutine. A server never served just releases its port. Later calls
// return the first call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Server) close(ctx context.Context) error {
	if s.done == nil {
		if err := s.ln.Close(); err != nil {
			return fmt.Errorf("metrics: closing %s: %w", s.ln.Addr(), err)
		}
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Shutdown gave up on slow requests: cut them off so the
		// goroutine can end.
		_ = s.srv.Close()
	}
	<-s.done
	if err == nil {
		err = s.err
	}
	if err != nil {
		return fmt.Errorf("metrics: stopping the server on %s: %w", s.ln.Addr(), err)
	}
	return nil
}
