// Package httpserve is the small HTTP server the metrics endpoint and the
// dashboard share: bind first (so a busy port fails early, before anything
// costly starts), serve later, and close without leaving a goroutine.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves one handler on one listener.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
	err    error
	before func() // runs first in Close, e.g. to end long-lived streams

	closeOnce sync.Once
	closeErr  error
}

// Listen binds addr for h. writeTimeout 0 means none (for streams).
// before, when not nil, runs at the start of Close.
func Listen(addr string, h http.Handler, writeTimeout time.Duration, before func()) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, before: before, srv: &http.Server{
		Handler: h,
		// A client that stalls must not hold a goroutine and a socket
		// for ever.
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       60 * time.Second,
	}}, nil
}

// Addr returns the bound address, with the real port when Listen was given
// port 0.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests in a goroutine until Close.
func (s *Server) Serve() {
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
}

// Close lets requests in progress finish until ctx ends, then closes their
// connections, and waits for the serving goroutine. A server never served
// just releases its port. Later calls return the first call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Server) close(ctx context.Context) error {
	if s.before != nil {
		s.before()
	}
	if s.done == nil {
		return s.ln.Close()
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
	return err
}
