package httpserve

import (
	"net"
	"os"
	"testing"
)

// TestHostPolicy: which Host headers a server accepts, for each kind of
// listen address (see Listen). The loopback and all-interfaces cases run
// on real servers in the dashboard and metrics tests; the others need an
// address this machine may not have, so they are checked on the policy.
func TestHostPolicy(t *testing.T) {
	hostname, _ := os.Hostname()
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 8080} }
	tests := []struct {
		name    string
		addr    string
		bound   net.Addr
		allowed []string
		yes, no []string
	}{
		{"loopback", "127.0.0.1:8080", tcp("127.0.0.1"), nil,
			[]string{"", "127.0.0.1:8080", "127.0.0.1", "127.9.9.9:8080", "localhost:8080", "LOCALHOST", "x.localhost:8080", "[::1]:8080", "[::1]", "localhost.:8080",
				"localhost:9000", "127.0.0.1:80", "[::1]:1"}, // an ssh tunnel's end
			[]string{"evil.example:8080", "evil.example", "10.0.0.5:8080", "localhost.evil.example", "127.0.0.1.nip.io:8080", "0.0.0.0:8080"}},
		{"loopback by name", "localhost:8080", tcp("127.0.0.1"), nil,
			[]string{"localhost:8080", "127.0.0.1:8080"}, []string{"evil.example:8080"}},
		{"IPv6 loopback", "[::1]:8080", tcp("::1"), nil,
			[]string{"[::1]:8080", "localhost:8080", "127.0.0.1:8080"}, []string{"evil.example:8080", "[::2]:8080"}},
		{"specific address", "10.0.0.5:8080", tcp("10.0.0.5"), nil,
			[]string{"10.0.0.5:8080", "10.0.0.5", hostname + ":8080"},
			[]string{"10.0.0.6:8080", "10.0.0.5:8081", "localhost:8080", "127.0.0.1:8080", "evil.example:8080"}},
		{"specific address by name", "node17.cluster:8080", tcp("10.0.0.5"), nil,
			[]string{"node17.cluster:8080", "NODE17.cluster.", "10.0.0.5:8080"}, []string{"node17.cluster:9", "node18.cluster:8080"}},
		{"all interfaces", "0.0.0.0:8080", tcp("0.0.0.0"), nil,
			[]string{"evil.example:8080", "anything", "10.0.0.5:1"}, nil},
		{"all interfaces, no host", ":8080", tcp("::"), nil, []string{"evil.example:8080"}, nil},
		{"allowed hosts", "127.0.0.1:8080", tcp("127.0.0.1"), []string{"Dash.Example.org"},
			[]string{"dash.example.org", "dash.example.org:443", "localhost:8080"}, []string{"example.org", "evil.example"}},
		{"allowed: any", "127.0.0.1:8080", tcp("127.0.0.1"), []string{"*"}, []string{"evil.example:1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newHostPolicy(tc.addr, tc.bound, tc.allowed)
			p.rdnsOnce.Do(func() {}) // no DNS in a unit test
			for _, h := range tc.yes {
				if h == ":8080" {
					continue // no host name on this machine
				}
				if !p.Allows(h) {
					t.Errorf("listening on %s: Host %q refused; want accepted (policy: %s)", tc.addr, h, p)
				}
			}
			for _, h := range tc.no {
				if p.Allows(h) {
					t.Errorf("listening on %s: Host %q accepted; want refused (policy: %s)", tc.addr, h, p)
				}
			}
		})
	}
}
