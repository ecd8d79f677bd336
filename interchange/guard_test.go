package interchange_test

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/certs"
	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/workerpool"
)

// TestManyPoolsOneSource starts hundreds of real pools (in this process)
// at once against a TLS interchange: all come from 127.0.0.1, as the
// pools of one host do, and the per-source handshake guard must let every
// one of them in (those it turns away while the burst is in flight retry).
func TestManyPoolsOneSource(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 400 pools")
	}
	const pools = 600
	dir := t.TempDir()
	b, err := certs.Generate(filepath.Join(dir, "certs"), []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logBuf syncWriter
	ix, _ := start(t, interchange.Options{
		Logger:           slog.New(slog.NewTextHandler(&logBuf, nil)),
		TLS:              &tls.Config{Certificates: []tls.Certificate{b.Server}, MinVersion: tls.VersionTLS13},
		HandshakeTimeout: time.Minute, HeartbeatThreshold: 2 * time.Minute,
	})
	cfg := wire.PoolConfig{Addresses: []string{ix.Addr().String()}, SecretFile: secretFile, CAFile: b.CAFile,
		ServerName: certs.ServerName, Workers: 1, HeartbeatThreshold: 2 * time.Minute, Generic: true}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	errs := make(chan error, pools)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range pools {
		wg.Go(func() {
			errs <- workerpool.Serve(ctx, cfg, workerpool.Options{Manager: "p" + strconv.Itoa(i)})
		})
	}
	for len(ix.Managers()) < pools {
		select {
		case err := <-errs:
			t.Fatalf("a pool stopped before all joined (%d of %d in): %v", len(ix.Managers()), pools, err)
		case <-ctx.Done():
			t.Fatalf("%d of %d pools joined within 100 s", len(ix.Managers()), pools)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("%d pools from one address joined in %s (guard log lines: %d)", pools, time.Since(began).Round(time.Millisecond),
		strings.Count(logBuf.String(), "did not authenticate"))
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := ix.Shutdown(sctx); err != nil {
		t.Error(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("pool: %v", err)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
