package workerpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/parsl-go/parsl/internal/wire"
)

// Exit codes of a pool process. They are distinct so that a provider or a
// person reading a block's status can tell why a pool ended.
const (
	// ExitOK: the interchange shut the pool down, or it drained.
	ExitOK = 0
	// ExitError: any other failure (bad frame, handshake error, ...).
	ExitError = 1
	// ExitConfig: the configuration, or a file it names (secret, CA),
	// could not be read.
	ExitConfig = 2
	// ExitRefused: the interchange refused the pool (build, registry or
	// secret mismatch).
	ExitRefused = 3
	// ExitUnreachable: no interchange address answered in time.
	ExitUnreachable = 4
	// ExitLost: contact with the interchange was lost.
	ExitLost = 5
)

// Main serves the pool role of a program started with PARSL_ROLE=pool:
// it reads the configuration named by $PARSL_POOL_CONFIG, runs the pool
// and returns the process exit code. parsl.Main calls it.
func Main() int {
	path := os.Getenv(wire.PoolConfigEnv)
	if path == "" {
		fmt.Fprintf(os.Stderr, "parsl pool: %s is not set; it must name the pool configuration file the driver wrote\n", wire.PoolConfigEnv)
		return ExitConfig
	}
	cfg, err := wire.ReadPoolConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitConfig
	}
	return Run(context.Background(), cfg, os.Stderr)
}

// Run runs a pool as a process does: it logs to
// cfg.LogDir/<block>/<manager>.log (stderr when LogDir is ""), drains on
// the first SIGTERM or SIGINT and stops at once on the second, writes the
// reason of a failure to stderr, and returns the exit code.
func Run(ctx context.Context, cfg wire.PoolConfig, stderr io.Writer) int {
	manager := NewManagerID()
	logOut := stderr
	if cfg.LogDir != "" {
		block := cfg.BlockID
		if block == "" {
			block = "block-unknown"
		}
		dir := filepath.Join(cfg.LogDir, block)
		f, err := openLog(dir, manager)
		if err != nil {
			// Logging is no reason not to work: say so and log to stderr.
			fmt.Fprintf(stderr, "parsl pool: cannot open a log file in %s (%v); logging to stderr\n", dir, err)
		} else {
			defer f.Close()
			logOut = f
		}
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	drain := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			case s := <-sigs:
				if n == 0 {
					log.Warn("signal received: draining; send it again to stop at once", "signal", s.String())
					close(drain)
				} else {
					log.Warn("second signal received: stopping now", "signal", s.String())
					cancel()
				}
			}
		}
	}()

	err := Serve(ctx, cfg, Options{Logger: log, Manager: manager, Drain: drain})
	close(done)
	<-watcherDone
	code := ExitCode(err)
	if err != nil && code != ExitOK {
		if logOut != stderr {
			log.Error("pool failed", "error", err, "exit_code", code)
		}
		// The block's stderr is where a person looks first, whatever the
		// log directory says.
		who := "pool " + manager
		if cfg.BlockID != "" {
			who += ", block " + cfg.BlockID
		}
		fmt.Fprintf(stderr, "%v [%s, exit code %d]\n", err, who, code)
	}
	return code
}

func openLog(dir, manager string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, manager+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}

// ExitCode maps an error returned by Serve to the pool's exit code. A
// stop asked for by the operator (a cancelled context) is a success.
func ExitCode(err error) int {
	var (
		re *wire.RefusedError
		ce *ConnectError
	)
	var cfe *configError
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return ExitOK
	case errors.As(err, &cfe):
		return ExitConfig
	case errors.As(err, &re):
		return ExitRefused
	case errors.As(err, &ce):
		return ExitUnreachable
	case errors.Is(err, ErrInterchangeLost):
		return ExitLost
	}
	return ExitError
}

// configError marks a failure caused by the pool's configuration (secret
// or CA file unreadable, no address), which retrying cannot fix.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }
