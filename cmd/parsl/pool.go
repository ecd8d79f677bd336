package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/parsl-go/parsl/internal/wire"
	"github.com/parsl-go/parsl/workerpool"
)

// exitCodeError carries a process exit code out of a command, so that main
// can exit with it instead of the generic 1 (a pool's exit code says why it
// ended: refused, unreachable, lost).
type exitCodeError struct {
	code int
}

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

// ExitCode returns the code the process should exit with.
func (e *exitCodeError) ExitCode() int { return e.code }

func newPoolCmd() *cobra.Command {
	var (
		configPath string
		blockID    string
	)
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Run a generic worker pool that takes bash tasks from an interchange",
		Long: `Run a generic worker pool: it joins the interchange named in the pool
configuration file, runs bash apps' commands on its workers and sends the
results back. It runs no Go apps (those need a pool started from the
program's own binary, PARSL_ROLE=pool), so it is not held to the driver's
build. It drains on SIGTERM or SIGINT and stops at once on a second one.

Exit codes: 0 done, 1 error, 2 configuration, 3 refused by the interchange,
4 interchange unreachable, 5 contact lost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return fmt.Errorf("no pool configuration: pass --config PATH or set %s", wire.PoolConfigEnv)
			}
			cfg, err := wire.ReadPoolConfig(configPath)
			if err != nil {
				return err
			}
			if blockID != "" {
				cfg.BlockID = blockID
			}
			cfg.Generic = true
			if code := workerpool.Run(cmd.Context(), cfg, cmd.ErrOrStderr()); code != workerpool.ExitOK {
				// Run has already written the reason to stderr.
				cmd.SilenceErrors = true
				return &exitCodeError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv(wire.PoolConfigEnv),
		"pool configuration file written by the driver (default $"+wire.PoolConfigEnv+")")
	cmd.Flags().StringVar(&blockID, "block-id", "",
		"block id to report to the interchange (overrides the file and $"+wire.BlockIDEnv+")")
	return cmd
}
