package parsl_test

import (
	"context"
	"errors"
	"fmt"
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
)

var roleEcho = parsl.Register1("test.role.echo", func(ctx context.Context, s string) (string, error) { return s, nil })

// TestLoadInServingProcess: Load in a process that was started as a pool
// fails at once, naming parsl.Main, and creates nothing.
func TestLoadInServingProcess(t *testing.T) {
	if os.Getenv(forgotMainEnv) != "" {
		t.Skip("child of TestLoadWithoutMain")
	}
	for _, role := range []string{"pool", "interchange"} {
		t.Run(role, func(t *testing.T) {
			t.Setenv(parsl.RoleEnv, role)
			dir := filepath.Join(t.TempDir(), "runs")
			dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: dir})
			if err == nil {
				dfk.Close(context.Background())
				t.Fatal("Load succeeded in a process started as a " + role)
			}
			var me *parsl.MainMissingError
			if !errors.As(err, &me) || me.Role != role {
				t.Fatalf("Load error %v (%T); want *MainMissingError for role %q", err, err, role)
			}
			if !strings.Contains(err.Error(), "parsl.Main()") {
				t.Errorf("error does not say what to do: %v", err)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Errorf("Load created %s before refusing", dir)
			}
		})
	}
}

// forgotMainChild is a user's program that forgot parsl.Main: it loads an
// htex config whose pools are this same program.
func forgotMainChild() {
	dir := os.Getenv(forgotMainEnv)
	ex := htex.New(htex.Options{Label: "forgot", Blocks: 1, MaxBlocks: 1,
		PoolCommand: []string{os.Args[0], "-test.run=^TestLoadWithoutMain$"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: dir, Executors: []executor.Executor{ex}})
	if err != nil {
		// What a user's main does: log.Fatal.
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(3)
	}
	_, err = roleEcho.Submit(dfk, parsl.Val("hi")).Get(ctx)
	fmt.Println("get:", err)
	dfk.Close(ctx)
	os.Exit(0)
}

// TestLoadWithoutMain: a program that forgets parsl.Main and runs an htex
// executor must not start copies of itself without end. Its pools refuse to
// run the workflow, so exactly one run directory exists (the driver's), the
// block's stderr says to call parsl.Main, and the driver ends.
func TestLoadWithoutMain(t *testing.T) {
	if os.Getenv(forgotMainEnv) != "" {
		forgotMainChild()
		return
	}
	if testing.Short() {
		t.Skip("starts worker pools")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadWithoutMain$")
	cmd.Env = append(os.Environ(), forgotMainEnv+"="+dir)
	// Its own process group, so that whatever it started can be killed
	// if the test fails.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	t.Logf("driver output:\n%s", out)
	if ctx.Err() != nil {
		t.Fatalf("the driver did not end within 90 s")
	}
	_ = err
	entries, _ := os.ReadDir(dir)
	var runs []string
	for _, e := range entries {
		runs = append(runs, e.Name())
	}
	if len(runs) != 1 {
		t.Fatalf("%d run directories (%v); want 1: pools started copies of the workflow", len(runs), runs)
	}
	errs, _ := filepath.Glob(filepath.Join(dir, runs[0], "*", "block-*.err"))
	if len(errs) == 0 {
		errs, _ = filepath.Glob(filepath.Join(dir, runs[0], "*", "*", "block-*.err"))
	}
	var found bool
	for _, f := range errs {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "parsl.Main()") {
			found = true
		}
	}
	if !found {
		t.Errorf("no block stderr (%v) names parsl.Main()", errs)
	}
	if !strings.Contains(string(out), "get:") || strings.Contains(string(out), "get: <nil>") {
		t.Errorf("the task should fail (its pools never start), and the driver report it; output:\n%s", out)
	}
}
