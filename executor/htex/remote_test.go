package htex_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/certs"
	"github.com/parsl-go/parsl/internal/wire"
)

// loadStandalone is load with the interchange as a child process (this
// test binary, PARSL_ROLE=interchange). Cleanup closes the kernel and
// checks that neither pools nor the interchange are left.
func loadStandalone(t *testing.T, o htex.Options, retries int) (*parsl.DFK, *htex.Executor) {
	t.Helper()
	o.Interchange = htex.InterchangeProcess
	ex := htex.New(fast(o))
	dfk, err := parsl.Load(ctxT(t, 20*time.Second), parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir(), Retries: retries})
	if err != nil {
		t.Fatal(err)
	}
	pid := ex.InterchangePID()
	if pid <= 0 {
		t.Fatalf("InterchangePID = %d with Interchange %q", pid, htex.InterchangeProcess)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = dfk.Close(ctx)
		assertNoPools(t, ex)
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("interchange process %d still exists after Close (kill 0: %v)", pid, err)
		}
	})
	return dfk, ex
}

// TestStandaloneManyTasksTwoPools sends 1,000 tasks through a standalone
// interchange to two pools.
func TestStandaloneManyTasksTwoPools(t *testing.T) {
	dfk, ex := loadStandalone(t, htex.Options{Blocks: 2, Prefetch: 16}, 0)
	const n = 1000
	fs := make([]*parsl.Future[int], n)
	for i := range fs {
		fs[i] = double.Submit(dfk, parsl.Val(i))
	}
	ctx := ctxT(t, 30*time.Second)
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if v != 2*i {
			t.Fatalf("task %d = %d, want %d", i, v, 2*i)
		}
	}
	if got := len(ex.JobIDs()); got != 2 {
		t.Fatalf("%d blocks started, want 2", got)
	}
}

// TestStandaloneSameBehaviour runs tests of the in-process mode against a
// standalone interchange.
func TestStandaloneSameBehaviour(t *testing.T) {
	off := false
	cases := []struct {
		name string
		opts htex.Options
		run  func(t *testing.T, dfk *parsl.DFK)
	}{
		{"bash", htex.Options{}, func(t *testing.T, dfk *parsl.DFK) {
			out := filepath.Join(t.TempDir(), "out.txt")
			ctx := ctxT(t, 20*time.Second)
			if _, err := echo.Submit(dfk, parsl.Val("hello htex"), parsl.Stdout(out)).Get(ctx); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "hello htex" {
				t.Fatalf("stdout = %q", b)
			}
			_, err := fails.Submit(dfk).Get(ctx)
			var be *parsl.BashExitError
			if !errors.As(err, &be) || be.ExitCode != 7 {
				t.Fatalf("err = %v, want BashExitError with code 7", err)
			}
		}},
		{"panic", htex.Options{}, func(t *testing.T, dfk *parsl.DFK) {
			_, err := boom.Submit(dfk, parsl.Val("x")).Get(ctxT(t, 20*time.Second))
			var ae *parsl.AppError
			if !errors.As(err, &ae) || !ae.Panicked || !strings.Contains(ae.Message, "boom: x") {
				t.Fatalf("err = %#v, want a panicked AppError", err)
			}
		}},
		{"walltime", htex.Options{}, func(t *testing.T, dfk *parsl.DFK) {
			_, err := nap.Submit(dfk, parsl.Val(10000), parsl.Walltime(200*time.Millisecond)).Get(ctxT(t, 20*time.Second))
			var we *parsl.WalltimeError
			if !errors.As(err, &we) {
				t.Fatalf("err = %v, want WalltimeError", err)
			}
		}},
		{"plaintext diamond", htex.Options{Encrypted: &off}, func(t *testing.T, dfk *parsl.DFK) {
			top := two.Submit(dfk)
			v, err := mul.Submit(dfk, mul.Submit(dfk, top, parsl.Val(3)), mul.Submit(dfk, top, parsl.Val(5))).Get(ctxT(t, 20*time.Second))
			if err != nil || v != 60 {
				t.Fatalf("diamond = %d, %v; want 60", v, err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dfk, _ := loadStandalone(t, c.opts, 0)
			c.run(t, dfk)
		})
	}
}

// TestStandaloneWrongSecretRefused dials the driver address with a
// secret that is not the run's: the interchange refuses it.
func TestStandaloneWrongSecretRefused(t *testing.T) {
	_, ex := loadStandalone(t, htex.Options{}, 0)
	addr := ex.InterchangeDriverAddr()
	ca := filepath.Join(filepath.Dir(ex.PoolConfigPath()), "certificates", "ca.pem")
	tc, err := certs.ClientConfig(ca, certs.ServerName)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = wire.ClientHandshake(bufio.NewReader(c), bufio.NewWriter(c), []byte("not the secret"), wire.Hello{Role: wire.RoleDriver})
	var re *wire.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "authentication") {
		t.Fatalf("handshake with a wrong secret: %v, want an authentication refusal", err)
	}
	// A pool that knows the secret is refused at the driver address too.
	b, err := os.ReadFile(filepath.Join(filepath.Dir(ex.PoolConfigPath()), "secret"))
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := hex.DecodeString(strings.TrimSpace(string(b)))
	c2, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = wire.ClientHandshake(bufio.NewReader(c2), bufio.NewWriter(c2), secret, wire.Hello{Manager: "p"})
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "pool address") {
		t.Fatalf("pool at the driver address: %v, want a refusal naming the pool address", err)
	}
}

// TestStandaloneInterchangeKilled kills the interchange process while
// tasks run: they fail at once with an ExecutorError naming the
// interchange, instead of waiting forever.
func TestStandaloneInterchangeKilled(t *testing.T) {
	dfk, ex := loadStandalone(t, htex.Options{Blocks: 1}, 0)
	var fs []*parsl.Future[int]
	for i := 0; i < 20; i++ {
		fs = append(fs, nap.Submit(dfk, parsl.Val(60000)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ex.Managers()) == 0 || ex.Managers()[0].InFlight == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the pool never got tasks")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(ex.InterchangePID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	for _, f := range fs {
		_, err := f.Get(ctx)
		var ee *parsl.ExecutorError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), "interchange") {
			t.Fatalf("err = %v, want an ExecutorError naming the interchange", err)
		}
	}
}

// TestStandaloneHostPort starts an interchange as `parsl interchange`
// would (InitDir, then the role with the config), and points an executor
// at its driver address and directory.
func TestStandaloneHostPort(t *testing.T) {
	dir := t.TempDir()
	if err := interchange.InitDir(dir, "127.0.0.1:0", "127.0.0.1:0", true); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "interchange.json")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "PARSL_ROLE=interchange", wire.InterchangeConfigEnv+"="+cfgPath)
	var log strings.Builder
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("the interchange did not exit after the executor shut it down; log:\n%s", log.String())
		}
	})
	var addrs wire.Addresses
	for deadline := time.Now().Add(10 * time.Second); ; {
		if addrs, err = wire.ReadAddresses(filepath.Join(dir, "addresses.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address file: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ex := htex.New(fast(htex.Options{Interchange: addrs.Driver, InterchangeDir: dir, Blocks: 1}))
	dfk, err := parsl.Load(ctxT(t, 20*time.Second), parsl.Config{Executors: []executor.Executor{ex}, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if ex.InterchangePID() != cmd.Process.Pid {
		t.Errorf("InterchangePID = %d, want %d", ex.InterchangePID(), cmd.Process.Pid)
	}
	fs := make([]*parsl.Future[int], 100)
	for i := range fs {
		fs[i] = double.Submit(dfk, parsl.Val(i))
	}
	ctx := ctxT(t, 20*time.Second)
	for i, f := range fs {
		if v, err := f.Get(ctx); err != nil || v != 2*i {
			t.Fatalf("task %d = %d, %v", i, v, err)
		}
	}
	if err := dfk.Close(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	assertNoPools(t, ex)
}
