package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/workerpool"
)

func TestPoolNeedsConfig(t *testing.T) {
	t.Setenv(wire.PoolConfigEnv, "")
	if _, _, err := run(t, "pool"); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("pool without a configuration: %v", err)
	}
	if _, _, err := run(t, "pool", "--config", filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("pool with a missing configuration: %v", err)
	}
}

// TestPoolGeneric runs `parsl pool` against a minimal interchange: it
// joins as a generic pool under the block id of the flag, runs a bash
// task, and exits 0 on shutdown.
func TestPoolGeneric(t *testing.T) {
	dir := t.TempDir()
	secret := wire.Nonce()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfgPath := filepath.Join(dir, "pool.json")
	if err := wire.WritePoolConfig(cfgPath, wire.PoolConfig{
		Addresses: []string{ln.Addr().String()}, SecretFile: secretFile, Workers: 1,
		HeartbeatPeriod: time.Second, HeartbeatThreshold: 10 * time.Second, LogDir: filepath.Join(dir, "logs"),
	}); err != nil {
		t.Fatal(err)
	}

	ix := make(chan error, 1)
	var hello wire.Hello
	out := filepath.Join(dir, "out")
	go func() {
		ix <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			r, w := bufio.NewReader(c), bufio.NewWriter(c)
			// The build expectation does not apply to generic pools.
			if hello, err = wire.ServerHandshake(r, w, secret, wire.Expect{BuildID: "the-driver"}, wire.Welcome{}); err != nil {
				return err
			}
			if err := wire.WriteFrame(w, wire.TTasks, wire.Tasks{Tasks: []wire.Task{{ID: 1, App: "b", Command: "echo $PARSL_WORKER_BLOCK_ID > " + out}}}); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for {
				typ, p, err := wire.ReadFrame(r, 0)
				if err != nil {
					return err
				}
				if typ != wire.TResults {
					continue
				}
				var rs wire.Results
				if err := wire.Decode(typ, p, &rs); err != nil {
					return err
				}
				if len(rs.Results) != 1 || rs.Results[0].Err != nil {
					return errors.New("bad result")
				}
				if err := wire.WriteFrame(w, wire.TShutdown, nil); err != nil {
					return err
				}
				return w.Flush()
			}
		}()
	}()

	if _, stderr, err := run(t, "pool", "--config", cfgPath, "--block-id", "b9"); err != nil {
		t.Fatalf("parsl pool: %v\n%s", err, stderr)
	}
	if err := <-ix; err != nil {
		t.Fatalf("interchange: %v", err)
	}
	if !hello.Generic || hello.BlockID != "b9" {
		t.Errorf("hello: %+v", hello)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "b9" {
		t.Errorf("task output %q", b)
	}
}

// TestPoolExitCode checks that a refused pool's exit code survives cobra.
func TestPoolExitCode(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(wire.Nonce())), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfgPath := filepath.Join(dir, "pool.json")
	if err := wire.WritePoolConfig(cfgPath, wire.PoolConfig{Addresses: []string{ln.Addr().String()}, SecretFile: secretFile, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Another secret: the interchange refuses.
		_, _ = wire.ServerHandshake(bufio.NewReader(c), bufio.NewWriter(c), wire.Nonce(), wire.Expect{}, wire.Welcome{})
	}()
	_, stderr, err := run(t, "pool", "--config", cfgPath)
	<-done
	var ec *exitCodeError
	if !errors.As(err, &ec) || ec.ExitCode() != workerpool.ExitRefused || !strings.Contains(stderr, "authentication failed") {
		t.Errorf("refused pool: %v, stderr:\n%s", err, stderr)
	}
}
