package htex_test

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/internal/certs"
	"github.com/parsl-go/parsl/internal/registry"
	"github.com/parsl-go/parsl/internal/wire"
)

// fakePoolEnv makes TestMain act as a pool that presents another app
// registry digest, as a pool built from other sources would.
const fakePoolEnv = "HTEXTEST_FAKE_POOL"

func init() {
	if os.Getenv(fakePoolEnv) == "digest" {
		cfg, err := wire.ReadPoolConfig(os.Getenv(wire.PoolConfigEnv))
		if err != nil {
			os.Exit(2)
		}
		c, r, w := dialRaw(cfg)
		defer c.Close()
		_, err = wire.ClientHandshake(r, w, secretOf(cfg), wire.Hello{BuildID: registry.BuildID(), Digest: "0123456789abcdef-other",
			Manager: "fake", Hostname: "fakehost", BlockID: os.Getenv(wire.BlockIDEnv), Workers: 1})
		var re *wire.RefusedError
		if errors.As(err, &re) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

func secretOf(cfg wire.PoolConfig) []byte {
	b, err := os.ReadFile(cfg.SecretFile)
	if err != nil {
		panic(err)
	}
	s, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		panic(err)
	}
	return s
}

// dialRaw connects to the interchange as a pool would, TLS included.
func dialRaw(cfg wire.PoolConfig) (net.Conn, *bufio.Reader, *bufio.Writer) {
	c, err := net.DialTimeout("tcp", cfg.Addresses[0], 5*time.Second)
	if err != nil {
		panic(err)
	}
	if cfg.CAFile != "" {
		tc, err := certs.ClientConfig(cfg.CAFile, cfg.ServerName)
		if err != nil {
			panic(err)
		}
		c = tls.Client(c, tc)
	}
	return c, bufio.NewReader(c), bufio.NewWriter(c)
}

func poolConfig(t *testing.T, ex *htex.Executor) wire.PoolConfig {
	t.Helper()
	cfg, err := wire.ReadPoolConfig(ex.PoolConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func goodHello() wire.Hello {
	return wire.Hello{BuildID: registry.BuildID(), Digest: registry.Digest(), Manager: "raw", Hostname: "rawhost", BlockID: "raw", Workers: 1}
}

// expectClosed reads until the interchange closes the connection and fails
// if a task frame arrives first.
func expectClosed(t *testing.T, c net.Conn, r *bufio.Reader, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	for {
		typ, _, err := wire.ReadFrame(r, 0)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the interchange did not close the connection within %s", within)
			}
			return
		}
		if typ == wire.TTasks {
			t.Fatal("a task was sent to a refused or dropped connection")
		}
	}
}

// expectDropped reads until the interchange closes the connection.
func expectDropped(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	for {
		_, _, err := wire.ReadFrame(r, 0)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the interchange kept a connection that sent a bad frame")
		}
		return
	}
}

func TestWrongSecretRefused(t *testing.T) {
	t.Parallel()
	dfk, ex := load(t, htex.Options{}, 0)
	// Keep tasks queued so that a leak would show.
	var fs []*parsl.Future[int]
	for i := 0; i < 50; i++ {
		fs = append(fs, nap.Submit(dfk, parsl.Val(20)))
	}
	cfg := poolConfig(t, ex)
	c, r, w := dialRaw(cfg)
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, err := wire.ClientHandshake(r, w, []byte("not the secret"), goodHello())
	var re *wire.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("handshake with a wrong secret: %v, want refused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %s, want < 1 s", d)
	}
	expectClosed(t, c, r, 2*time.Second)
	for _, f := range fs {
		if _, err := f.Get(ctxT(t, 20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSilentClientDroppedAfterHandshakeTimeout(t *testing.T) {
	t.Parallel()
	_, ex := load(t, htex.Options{}, 0)
	c, err := net.Dial("tcp", ex.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("a client that says nothing must be dropped after ~1 s; read: %v after %s", err, time.Since(start))
	}
}

func TestDigestMismatchRefusedWithReason(t *testing.T) {
	t.Parallel()
	dfk, ex := load(t, htex.Options{Blocks: -1}, 0)
	cfg := poolConfig(t, ex)
	c, r, w := dialRaw(cfg)
	defer c.Close()
	h := goodHello()
	h.Digest = "ffffffffffffffff-different"
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, err := wire.ClientHandshake(r, w, secretOf(cfg), h)
	var re *wire.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "app registry digest") {
		t.Fatalf("err = %v, want a refusal naming the registry digest", err)
	}
	// The executor's only pool was refused: tasks fail with the reason.
	_, err = double.Submit(dfk, parsl.Val(1)).Get(ctxT(t, 10*time.Second))
	var be *htex.BadStateError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "app registry digest") {
		t.Fatalf("task error = %v, want a BadStateError naming the digest", err)
	}
}

func TestOnlyPoolRefusedFailsTasks(t *testing.T) {
	t.Parallel()
	dfk, _ := load(t, htex.Options{WorkerEnv: []string{fakePoolEnv + "=digest"}}, 0)
	start := time.Now()
	_, err := double.Submit(dfk, parsl.Val(1)).Get(ctxT(t, 20*time.Second))
	var ee *parsl.ExecutorError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "app registry digest") {
		t.Fatalf("task error = %v, want an ExecutorError naming the digest", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing took %s", d)
	}
}

func TestBadFramesDropConnectionOnly(t *testing.T) {
	t.Parallel()
	dfk, ex := load(t, htex.Options{MaxFrame: 1 << 20}, 2)
	cfg := poolConfig(t, ex)
	frames := map[string][]byte{
		"unknown type": {0, 0, 0, 1, 200, 0},
		"garbage cbor": append([]byte{0, 0, 0, 4, byte(wire.TResults)}, 0xff, 0xff, 0xff, 0xff),
		"oversized":    binary.BigEndian.AppendUint32(nil, 1<<30),
		"truncated":    {0, 0, 0, 100, byte(wire.TResults), 1, 2, 3},
	}
	frames["oversized"] = append(frames["oversized"], byte(wire.TResults))
	for name, frame := range frames {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			c, r, w := dialRaw(cfg)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := wire.ClientHandshake(r, w, secretOf(cfg), goodHello()); err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write(frame)
			_ = w.Flush()
			if name == "truncated" {
				// Half-close: the interchange sees the frame cut short.
				if tc, ok := c.(*tls.Conn); ok {
					_ = tc.CloseWrite()
				}
			}
			expectDropped(t, c, r)
		})
	}
	// Garbage over plain TCP to the TLS listener.
	c, err := net.Dial("tcp", ex.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _ = c.Read(make([]byte, 64))
	c.Close()
	// The real pool still serves.
	for i := 0; i < 100; i++ {
		if v, err := double.Submit(dfk, parsl.Val(i)).Get(ctxT(t, 20*time.Second)); err != nil || v != 2*i {
			t.Fatalf("after bad frames: %d, %v", v, err)
		}
	}
	if n := len(ex.Managers()); n != 1 {
		t.Fatalf("%d managers connected, want only the real pool", n)
	}
}
