package dashboard_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/store"
)

// liveRun writes a run that has not ended (so its event stream stays
// open) with n tasks, and returns the store and the run id.
func liveRun(t *testing.T, n int64) (*store.Store, string) {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "live.db"))
	ctx := context.Background()
	now := time.Now()
	run := "live-run"
	recs := []store.Record{&store.Workflow{RunID: run, TimeBegan: now.Add(-time.Minute), Host: "h", User: "u", RunDir: "/tmp/x"}}
	for i := range n {
		recs = append(recs, &store.Status{RunID: run, TaskID: i, State: "pending", Timestamp: now.Add(-30 * time.Second)},
			&store.Status{RunID: run, TaskID: i, State: "running", Timestamp: now.Add(-20 * time.Second)})
	}
	for _, r := range recs {
		if err := st.Enqueue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return st, run
}

// serve runs the dashboard of opts through Listen on addr, as a driver
// and parsl visualize do, and returns its handler and base URL.
func serve(t *testing.T, addr string, opts dashboard.Options) (*dashboard.Handler, string) {
	t.Helper()
	h, err := dashboard.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dashboard.Listen(addr, h)
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
	return h, "http://127.0.0.1:" + port
}

func fetch(t *testing.T, c *http.Client, url, host string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestPageNumbers asks the task table and the Gantt chart for pages that
// do not exist: each gets 400 and a message saying which pages do, before
// any query with an overflowing offset runs.
func TestPageNumbers(t *testing.T) {
	st, run := liveRun(t, 150) // two pages of the table, one of the Gantt
	_, base := serve(t, "127.0.0.1:0", dashboard.Options{Store: st})
	tests := []struct {
		page string
		code int
		want string
	}{
		{"", 200, "page 1 of"},
		{"1", 200, "page 1 of"},
		{"0", 400, `page=&#34;0&#34;: want a whole number from 1 to 10000000`},
		{"-1", 400, `page=&#34;-1&#34;`},
		{"-9223372036854775808", 400, "want a whole number"},
		{"x", 400, "want a whole number"},
		{"1.5", 400, "want a whole number"},
		{"1e3", 400, "want a whole number"},
		{"0x10", 400, "want a whole number"},
		{"%20", 400, "want a whole number"},
		{"99999999999999999999", 400, "want a whole number"}, // past int64
		{"92233720368547759", 400, "want a whole number"},    // × page size overflows
		{"10000001", 400, "want a whole number"},
		{"10000000", 400, "there are"}, // in range, but past the last page
		{"3", 400, "there are"},
	}
	for _, kind := range []struct {
		path  string
		pages int
	}{{"tasks", 2}, {"gantt", 1}} {
		for _, tc := range tests {
			t.Run(kind.path+"/"+tc.page, func(t *testing.T) {
				resp, body := fetch(t, http.DefaultClient, base+"/workflow/"+run+"/"+kind.path+"?page="+tc.page, "")
				code, want := tc.code, tc.want
				if tc.page == "3" && kind.pages == 1 || tc.page == "2" {
					code, want = 400, "there are"
				}
				if resp.StatusCode != code || !strings.Contains(body, want) {
					t.Fatalf("page=%s: status %d, want %d with %q\n%.600s", tc.page, resp.StatusCode, code, want, body)
				}
				if code == 400 && want == "there are" && !strings.Contains(body, fmt.Sprintf("there are %d pages", kind.pages)) {
					t.Errorf("page=%s: the message should give the number of pages, %d:\n%.600s", tc.page, kind.pages, body)
				}
			})
		}
	}
	// The last page itself is fine.
	resp, body := fetch(t, http.DefaultClient, base+"/workflow/"+run+"/tasks?page=2", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "page 2 of 2") {
		t.Fatalf("last page: %d\n%.600s", resp.StatusCode, body)
	}
}

// TestHostHeader: a dashboard on a loopback address answers only requests
// that name it by a loopback name (a page of another site made to resolve
// to 127.0.0.1 by DNS rebinding gets 421); one on all interfaces answers
// any.
func TestHostHeader(t *testing.T) {
	st, run := liveRun(t, 1)
	_, base := serve(t, "127.0.0.1:0", dashboard.Options{Store: st})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	_, anyBase := serve(t, "0.0.0.0:0", dashboard.Options{Store: st})
	_, proxied := serve(t, "127.0.0.1:0", dashboard.Options{Store: st, AllowedHosts: []string{"dash.example.org"}})
	tests := []struct {
		host         string
		loopback     int
		allInterface int
	}{
		{"127.0.0.1:" + port, 200, 200},
		{"localhost:" + port, 200, 200},
		{"LocalHost:" + port, 200, 200},
		{"localhost.:" + port, 200, 200},
		{"app.localhost:" + port, 200, 200},
		{"localhost", 200, 200},
		{"127.0.0.1", 200, 200},
		{"127.1.2.3:" + port, 200, 200},
		{"[::1]:" + port, 200, 200},
		{"[::1]", 200, 200},
		{"attacker.example:" + port, 421, 200},
		{"attacker.example", 421, 200},
		{"localhost.attacker.example:" + port, 421, 200},
		{"127.0.0.1.nip.io:" + port, 421, 200},
		{"192.168.1.10:" + port, 421, 200},
		{"localhost:9000", 200, 200}, // ssh -L 9000:127.0.0.1:port
		{"[::1]:1", 200, 200},
		{"dash.example.org", 421, 200},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			for _, srv := range []struct {
				base string
				want int
			}{{base, tc.loopback}, {anyBase, tc.allInterface}} {
				resp, body := fetch(t, http.DefaultClient, srv.base+"/workflow/"+run+"/", tc.host)
				if resp.StatusCode != srv.want {
					t.Errorf("%s with Host %q: status %d, want %d\n%.300s", srv.base, tc.host, resp.StatusCode, srv.want, body)
				}
				if resp.StatusCode == 421 && !strings.Contains(body, "localhost, 127.0.0.1") {
					t.Errorf("the refusal should name the hosts accepted: %s", body)
				}
			}
		})
	}
	_, pport, _ := net.SplitHostPort(strings.TrimPrefix(proxied, "http://"))
	for host, want := range map[string]int{"dash.example.org": 200, "dash.example.org:443": 200, "DASH.example.org.": 200,
		"localhost:" + pport: 200, "other.example.org": 421} {
		if resp, _ := fetch(t, http.DefaultClient, proxied+"/", host); resp.StatusCode != want {
			t.Errorf("AllowedHosts dash.example.org, Host %q: status %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestSecurityHeaders: every response, pages, errors, files, refusals,
// carries the security headers, and no page has an inline style or
// script, which the policy would refuse.
func TestSecurityHeaders(t *testing.T) {
	st, run := liveRun(t, 3)
	_, base := serve(t, "127.0.0.1:0", dashboard.Options{Store: st, Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "parsl_tasks 1\n")
	})})
	wf := "/workflow/" + run
	for _, tc := range []struct {
		path, host string
		code       int
	}{
		{"/", "", 200}, {wf + "/", "", 200}, {wf + "/tasks", "", 200}, {wf + "/task/1", "", 200}, {wf + "/gantt", "", 200},
		{wf + "/dag", "", 200}, {wf + "/dag?group=state", "", 200}, {wf + "/resources", "", 200},
		{"/static/dashboard.js", "", 200}, {"/static/style.css", "", 200}, {"/static/colors.css", "", 200}, {"/metrics", "", 200},
		{"/nothing", "", 404}, {wf + "/tasks?page=0", "", 400}, {"/", "rebound.example", 421},
	} {
		resp, body := fetch(t, http.DefaultClient, base+tc.path, tc.host)
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET %s: %s %q, want %q", tc.path, k, got, v)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", tc.path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q allows unsafe sources", tc.path, csp)
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			if m := inline.FindString(body); m != "" {
				t.Errorf("GET %s: page has %q, which the Content-Security-Policy refuses", tc.path, m)
			}
		}
	}
}

// inline finds what a Content-Security-Policy without 'unsafe-inline'
// refuses: style attributes and elements, inline scripts, event handler
// attributes, javascript: links.
var inline = regexp.MustCompile(`(?i)\sstyle=|<style|<script>|<script\s+[^>]*>[^<]|\son[a-z]+=|javascript:`)

// openEvents opens the event stream of run through c and waits for its
// first event; the caller closes the body.
func openEvents(t *testing.T, c *http.Client, base, run string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(base + "/workflow/" + run + "/events")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "event: counts\n" {
		t.Fatalf("first line of the stream: %q, %v", line, err)
	}
	return resp, ""
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so that a test can be several clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestStreamLimits opens real event streams from two client addresses:
// past the per-client limit and past the global one the answer is 503
// with Retry-After, and a stream whose client goes away frees its slot.
func TestStreamLimits(t *testing.T) {
	st, run := liveRun(t, 3)
	h, base := serve(t, "127.0.0.1:0", dashboard.Options{Store: st, LiveInterval: 20 * time.Millisecond,
		MaxStreams: 3, MaxStreamsPerClient: 2})
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	defer a.CloseIdleConnections()
	defer b.CloseIdleConnections()
	refused := func(who string, resp *http.Response, body, want string) {
		t.Helper()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, want) {
			resp.Body.Close()
			t.Fatalf("%s: status %d, Retry-After %q, want 503 with Retry-After and %q\n%.400s",
				who, resp.StatusCode, resp.Header.Get("Retry-After"), want, body)
		}
	}
	a1, _ := openEvents(t, a, base, run)
	a2, _ := openEvents(t, a, base, run)
	resp, body := openEvents(t, a, base, run)
	refused("client A's third stream", resp, body, "MaxStreamsPerClient")
	b1, _ := openEvents(t, b, base, run)
	if b1.StatusCode != 200 {
		t.Fatalf("client B's first stream: %d", b1.StatusCode)
	}
	resp, body = openEvents(t, b, base, run)
	refused("a fourth stream in all", resp, body, "MaxStreams")
	// Clients that go away free their slots.
	a1.Body.Close()
	a2.Body.Close()
	waitFor(t, "the streams of a client that left to end", func() bool { return h.OpenStreams() == 1 })
	b2, _ := openEvents(t, b, base, run)
	if b2.StatusCode != 200 {
		t.Fatalf("a stream after others ended: %d", b2.StatusCode)
	}
	b1.Body.Close()
	b2.Body.Close()
	waitFor(t, "every stream to end", func() bool { return h.OpenStreams() == 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 60 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
