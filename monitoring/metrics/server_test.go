package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerHostAndHeaders scrapes a real metrics server on 127.0.0.1:
// a Host that is not a loopback name (a page of another site rebound to
// 127.0.0.1) gets 421, and every answer carries the security headers.
func TestServerHostAndHeaders(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", New())
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	for _, tc := range []struct {
		host string
		code int
	}{
		{"", 200},
		{"127.0.0.1:" + port, 200},
		{"localhost:" + port, 200},
		{"[::1]:" + port, 200},
		{"localhost", 200},
		{"rebound.attacker.example:" + port, 421},
		{"rebound.attacker.example", 421},
		{"localhost:" + port + "0", 200}, // an ssh tunnel's end
		{"10.1.2.3:" + port, 421},
	} {
		req, err := http.NewRequest("GET", "http://127.0.0.1:"+port+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("Host %q: status %d, want %d\n%.300s", tc.host, resp.StatusCode, tc.code, b)
		}
		if tc.code == 200 && !strings.Contains(string(b), "parsl_") {
			t.Errorf("Host %q: no metrics in\n%.300s", tc.host, b)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("Host %q: %s %q, want %q", tc.host, k, got, v)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("Host %q: Content-Security-Policy %q", tc.host, csp)
		}
	}
}
