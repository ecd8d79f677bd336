// Package httpserve is the small HTTP server the metrics endpoint and the
// dashboard share: bind first (so a busy port fails early, before anything
// costly starts), serve later, and close without leaving a goroutine.
//
// Every response carries the security headers of SetSecurityHeaders, and a
// request whose Host header names no address of the server is refused
// (see Listen): neither server has authentication, so a web page elsewhere
// must not be able to read it through DNS rebinding or frame it.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// WriteTimeout bounds the writing of a response; 0 means none (for
	// streams, which bound their own writes).
	WriteTimeout time.Duration
	// Before, when not nil, runs at the start of Close, e.g. to end
	// long-lived streams that would otherwise hold a graceful shutdown.
	Before func()
	// AllowedHosts are further names (without port, any port is then
	// accepted) that requests may give in their Host header, for instance
	// the name of a reverse proxy in front of the server. "*" accepts any
	// Host.
	AllowedHosts []string
}

// Server serves one handler on one listener.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
	err    error
	before func()

	closeOnce sync.Once
	closeErr  error
}

// Listen binds addr for h.
//
// The Host header of each request is checked against the address bound,
// which defeats DNS rebinding (a page of another site whose name is made
// to resolve to this address):
//   - on a loopback address (127.0.0.1, [::1], localhost), only loopback
//     names and addresses are accepted: localhost, *.localhost, 127.x.y.z,
//     [::1], at any port: no other site can make a browser send those
//     names, and an ssh tunnel (ssh -L 9000:127.0.0.1:8080) brings the
//     port of its own end;
//   - on a specific other address, that address, the name given in addr,
//     this machine's host name and the names the address's reverse DNS
//     gives (looked up once, when a Host first fails the other checks),
//     with the port bound or none;
//   - on all interfaces (":8080", "0.0.0.0:8080", "[::]:8080"), any Host:
//     a server open to the network cannot know the names it is reached
//     by, so there the check is left to the network.
//
// Options.AllowedHosts adds names to these, at any port. Other requests
// get 421 Misdirected Request with a message naming the hosts accepted.
func Listen(addr string, h http.Handler, o Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	pol := newHostPolicy(addr, ln.Addr(), o.AllowedHosts)
	return &Server{ln: ln, before: o.Before, srv: &http.Server{
		Handler: Guard(h, pol),
		// A client that stalls must not hold a goroutine and a socket
		// for ever.
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      o.WriteTimeout,
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

// ContentSecurityPolicy is the policy of every response: the pages load
// their script, styles and images from the server itself only, run no
// inline script or style, cannot be framed, and send forms only to the
// server.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SetSecurityHeaders sets on hdr the headers every response of ours
// carries. A handler that may be mounted in another program's server sets
// them itself, since Listen's wrapper is not there.
func SetSecurityHeaders(hdr http.Header) {
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// Guard returns h behind the Host check of p, with the security headers
// set on every response, refused ones included.
func Guard(h http.Handler, p *HostPolicy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header())
		if !p.Allows(r.Host) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusMisdirectedRequest)
			fmt.Fprintf(w, "Host %q is not an address of this server, which accepts %s. "+
				"Open it by one of those, or list the name in its allowed hosts.\n", r.Host, p)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// HostPolicy says which Host headers a server accepts; see Listen.
type HostPolicy struct {
	any      bool
	loopback bool
	ip       net.IP
	port     string
	allowed  []string // Options.AllowedHosts: any port
	names    []string // the server's own names: its port only

	// rdns resolves the bound address's names once, for a server on a
	// specific address reached by a name we did not know at Listen.
	rdnsOnce sync.Once
	rdns     []string
}

// newHostPolicy is the policy of a server asked to listen on addr and
// bound to bound.
func newHostPolicy(addr string, bound net.Addr, allowed []string) *HostPolicy {
	p := &HostPolicy{}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok {
		p.any = true
		return p
	}
	p.ip, p.port = tcp.IP, fmt.Sprint(tcp.Port)
	for _, a := range allowed {
		if a == "*" {
			p.any = true
		}
		p.allowed = append(p.allowed, normHost(a))
	}
	switch {
	case tcp.IP.IsUnspecified():
		p.any = true
	case tcp.IP.IsLoopback():
		p.loopback = true
	default:
		if host, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host) == nil && host != "" {
			p.names = append(p.names, normHost(host))
		}
		if hn, err := os.Hostname(); err == nil && hn != "" {
			p.names = append(p.names, normHost(hn))
		}
	}
	return p
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// Allows reports whether a request with Host header host may be answered.
func (p *HostPolicy) Allows(host string) bool {
	if p.any || host == "" {
		// A request without Host (HTTP/1.0) comes from no browser, so
		// it cannot be a rebinding.
		return true
	}
	name, port := host, ""
	if h, pt, err := net.SplitHostPort(host); err == nil {
		name, port = h, pt
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		name = host[1 : len(host)-1]
	}
	name = normHost(name)
	if slices.Contains(p.allowed, name) {
		return true // at any port: a proxy in front has its own
	}
	if p.loopback {
		// Browsers resolve the localhost names to loopback themselves,
		// never through DNS, so no other site can rebind them. Any
		// port: a tunnel's local end has its own.
		ip := net.ParseIP(name)
		return ip != nil && ip.IsLoopback() || name == "localhost" || strings.HasSuffix(name, ".localhost")
	}
	if port != "" && port != p.port {
		return false
	}
	if slices.Contains(p.names, name) {
		return true
	}
	if ip := net.ParseIP(name); ip != nil {
		return ip.Equal(p.ip)
	}
	return slices.Contains(p.reverseNames(), name)
}

// reverseNames returns the names reverse DNS gives for the bound address,
// looked up once: the owner of an address controls them, not another
// site.
func (p *HostPolicy) reverseNames() []string {
	p.rdnsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		names, _ := net.DefaultResolver.LookupAddr(ctx, p.ip.String())
		for _, n := range names {
			p.rdns = append(p.rdns, normHost(n))
		}
	})
	return p.rdns
}

// String describes the accepted hosts, for the refusal message.
func (p *HostPolicy) String() string {
	if p.any {
		return "any Host"
	}
	var out string
	if p.loopback {
		out = "localhost, 127.0.0.1 or [::1] (any port)"
	} else {
		out = strings.Join(append([]string{p.ip.String()}, p.names...), ", ") + " (port " + p.port + " or none)"
	}
	if len(p.allowed) > 0 {
		out += " and " + strings.Join(p.allowed, ", ") + " (any port)"
	}
	return out
}
