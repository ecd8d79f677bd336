package workerpool_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/codec"
	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/workerpool"
)

// fakeIX is a minimal interchange: it accepts one pool, runs the server
// side of the handshake, and lets a test send frames and read the pool's.
type fakeIX struct {
	t      testing.TB
	ln     net.Listener
	secret []byte
	dir    string
	caFile string

	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer

	Hello wire.Hello
	// Welcome is what accept sends the pool (heartbeat settings and the
	// MAC are filled in by the handshake).
	Welcome    wire.Welcome
	Heartbeats int
	Drains     int
}

type fakeOpts struct {
	tls bool
}

func newFake(t testing.TB, o fakeOpts) *fakeIX {
	t.Helper()
	f := &fakeIX{t: t, dir: t.TempDir(), secret: wire.Nonce()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.tls {
		cert, caPEM := selfSigned(t, "parsl-test")
		f.caFile = filepath.Join(f.dir, "ca.pem")
		if err := os.WriteFile(f.caFile, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})
	}
	f.ln = ln
	t.Cleanup(func() {
		ln.Close()
		if f.conn != nil {
			f.conn.Close()
		}
	})
	return f
}

// config returns a pool configuration pointing at f with short periods.
func (f *fakeIX) config(workers int) wire.PoolConfig {
	secretFile := filepath.Join(f.dir, "secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(f.secret)+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	cfg := wire.PoolConfig{
		Addresses:          []string{f.ln.Addr().String()},
		SecretFile:         secretFile,
		BlockID:            "7",
		Workers:            workers,
		HeartbeatPeriod:    50 * time.Millisecond,
		HeartbeatThreshold: 10 * time.Second,
	}
	if f.caFile != "" {
		cfg.CAFile, cfg.ServerName = f.caFile, "parsl-test"
	}
	return cfg
}

// accept takes the pool's connection and runs the handshake with expect.
func (f *fakeIX) accept(expect wire.Expect) error {
	f.t.Helper()
	if tl, ok := f.ln.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(10 * time.Second))
	}
	c, err := f.ln.Accept()
	if err != nil {
		return err
	}
	f.conn = c
	f.r, f.w = bufio.NewReader(c), bufio.NewWriter(c)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	f.Hello, err = wire.ServerHandshake(f.r, f.w, f.secret, expect, f.Welcome)
	_ = c.SetDeadline(time.Time{})
	return err
}

func (f *fakeIX) mustAccept() {
	f.t.Helper()
	if err := f.accept(wire.Expect{}); err != nil {
		f.t.Fatalf("handshake: %v", err)
	}
}

func (f *fakeIX) send(t wire.Type, v any) {
	f.t.Helper()
	if err := wire.WriteFrame(f.w, t, v); err != nil {
		f.t.Fatal(err)
	}
	if err := f.w.Flush(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeIX) sendTasks(ts ...wire.Task) { f.send(wire.TTasks, wire.Tasks{Tasks: ts}) }

// next reads one frame, counting heartbeats and drains on the way; it
// fails the test after timeout.
func (f *fakeIX) next(timeout time.Duration) (wire.Type, []byte, error) {
	_ = f.conn.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = f.conn.SetReadDeadline(time.Time{}) }()
	t, p, err := wire.ReadFrame(f.r, 0)
	if err == nil {
		switch t {
		case wire.THeartbeat:
			f.Heartbeats++
		case wire.TDrain:
			f.Drains++
		}
	}
	return t, p, err
}

// results reads until n results have arrived and returns them by ID, and
// the number of TResults frames they came in.
func (f *fakeIX) results(n int, timeout time.Duration) (map[int64]wire.Result, int) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	got := map[int64]wire.Result{}
	frames := 0
	for len(got) < n {
		t, p, err := f.next(time.Until(deadline))
		if err != nil {
			f.t.Fatalf("after %d of %d results: %v", len(got), n, err)
		}
		if t != wire.TResults {
			continue
		}
		frames++
		var rs wire.Results
		if err := wire.Decode(t, p, &rs); err != nil {
			f.t.Fatal(err)
		}
		for _, r := range rs.Results {
			if _, dup := got[r.ID]; dup {
				f.t.Errorf("result for task %d twice", r.ID)
			}
			got[r.ID] = r
		}
	}
	return got, frames
}

func (f *fakeIX) result1(task wire.Task) wire.Result {
	f.t.Helper()
	f.sendTasks(task)
	rs, _ := f.results(1, 10*time.Second)
	r, ok := rs[task.ID]
	if !ok {
		f.t.Fatalf("no result for task %d: %v", task.ID, rs)
	}
	return r
}

// waitFor reads frames until one of type want arrives.
func (f *fakeIX) waitFor(want wire.Type, timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		t, _, err := f.next(time.Until(deadline))
		if err != nil {
			f.t.Fatalf("waiting for %s: %v", want, err)
		}
		if t == want {
			return
		}
	}
}

// served runs Serve in a goroutine; wait returns its error.
type served struct {
	done chan error
	once sync.Once
	err  error
}

func serve(ctx context.Context, cfg wire.PoolConfig, opts workerpool.Options) *served {
	s := &served{done: make(chan error, 1)}
	go func() { s.done <- workerpool.Serve(ctx, cfg, opts) }()
	return s
}

func (s *served) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	s.once.Do(func() {
		select {
		case s.err = <-s.done:
		case <-time.After(timeout):
			t.Fatalf("Serve did not return within %s", timeout)
		}
	})
	return s.err
}

// startPool starts a fake interchange and a pool joined to it. The pool
// is shut down (TShutdown) and waited for at the end of the test.
func startPool(t *testing.T, workers int, edit func(*wire.PoolConfig)) *fakeIX {
	t.Helper()
	f := newFake(t, fakeOpts{})
	cfg := f.config(workers)
	if edit != nil {
		edit(&cfg)
	}
	s := serve(context.Background(), cfg, workerpool.Options{})
	f.mustAccept()
	t.Cleanup(func() {
		f.send(wire.TShutdown, nil)
		if err := s.wait(t, 10*time.Second); err != nil {
			t.Errorf("Serve after TShutdown: %v", err)
		}
	})
	return f
}

func raw(t *testing.T, v any) codec.RawMessage {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode[T any](t *testing.T, r wire.Result) T {
	t.Helper()
	var v T
	if r.Err != nil {
		t.Fatalf("task %d failed: %+v", r.ID, *r.Err)
	}
	if err := codec.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("task %d: decoding result: %v", r.ID, err)
	}
	return v
}

func wantErr(t *testing.T, r wire.Result, kind wire.ErrorKind) *wire.Error {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("task %d succeeded, want error kind %d", r.ID, kind)
	}
	if r.Err.Kind != kind {
		t.Fatalf("task %d: error kind %d, want %d: %+v", r.ID, r.Err.Kind, kind, *r.Err)
	}
	return r.Err
}

// selfSigned makes a throwaway CA certificate valid for name.
func selfSigned(t testing.TB, name string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
