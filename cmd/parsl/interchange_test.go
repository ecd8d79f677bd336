package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/wire"
)

func TestInterchangeNeedsConfig(t *testing.T) {
	t.Setenv(wire.InterchangeConfigEnv, "")
	if _, _, err := run(t, "interchange"); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("interchange without a configuration: %v", err)
	}
}

// TestInterchangeInitAndRun makes a directory with --init, runs the
// interchange from it, and checks it exits by itself when no driver comes
// within the grace period.
func TestInterchangeInitAndRun(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := run(t, "interchange", "--init", dir, "--pool-address", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"interchange.json", "secret", "certificates/ca.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("--init did not write %s: %v", f, err)
		}
	}
	cfgPath := filepath.Join(dir, "interchange.json")
	cfg, err := wire.ReadInterchangeConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HeartbeatPeriod, cfg.HeartbeatThreshold, cfg.DriverGrace = 100*time.Millisecond, time.Second, 200*time.Millisecond
	if err := wire.WriteInterchangeConfig(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := newRootCmd()
	cmd.SetArgs([]string{"interchange", "--config", cfgPath})
	cmd.SetOut(&strings.Builder{})
	cmd.SetErr(&strings.Builder{})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the interchange ran until the test's deadline instead of leaving after the grace period")
	}
	if a, err := wire.ReadAddresses(cfg.AddressFile); err != nil || a.Driver == "" {
		t.Fatalf("address file: %+v, %v", a, err)
	}
}
