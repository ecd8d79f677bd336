package interchange

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/wire"
)

// TestStandaloneExitsWithoutDriver runs a standalone interchange made by
// InitDir: it writes its addresses and, with no driver, exits after the
// grace period.
func TestStandaloneExitsWithoutDriver(t *testing.T) {
	dir := t.TempDir()
	if err := InitDir(dir, "127.0.0.1:0", "127.0.0.1:0", true); err != nil {
		t.Fatal(err)
	}
	cfg, err := wire.ReadInterchangeConfig(filepath.Join(dir, "interchange.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HeartbeatPeriod, cfg.HeartbeatThreshold, cfg.DriverGrace = 100*time.Millisecond, time.Second, 300*time.Millisecond
	var log bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- RunStandalone(context.Background(), cfg, &log) }()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit code %d; log:\n%s", code, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the interchange did not exit after the grace period")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("exited after %s, before the grace period", d)
	}
	a, err := wire.ReadAddresses(cfg.AddressFile)
	if err != nil || a.Driver == "" || len(a.Pools) == 0 {
		t.Fatalf("address file: %+v, %v", a, err)
	}
}
