package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/wire"
)

func newInterchangeCmd() *cobra.Command {
	var (
		configPath, initDir  string
		poolAddr, driverAddr string
		plain                bool
	)
	cmd := &cobra.Command{
		Use:   "interchange",
		Short: "Run a standalone interchange for the high-throughput executor",
		Long: `Run the high-throughput executor's interchange as its own process, on a
host that both the driver and the compute nodes can reach. Pools connect
to its pool address; the executor (htex.Options.Interchange = "host:port"
of the driver address, InterchangeDir = DIR) connects to its driver address.

  parsl interchange --init DIR --pool-address 0.0.0.0:54000 --driver-address 0.0.0.0:54001
      writes DIR/interchange.json, DIR/secret and DIR/certificates/
  parsl interchange --config DIR/interchange.json
      runs it; it writes the addresses it bound to DIR/addresses.json

It exits after the driver shuts it down, or when no driver has been
connected for the grace period (driver_grace, default the heartbeat
threshold), telling its pools to exit first.

Exit codes: 0 done, 1 error, 2 configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if initDir != "" {
				return interchange.InitDir(initDir, poolAddr, driverAddr, !plain)
			}
			if configPath == "" {
				return fmt.Errorf("no interchange configuration: pass --config PATH, set %s, or make one with --init DIR", wire.InterchangeConfigEnv)
			}
			cfg, err := wire.ReadInterchangeConfig(configPath)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if code := interchange.RunStandalone(ctx, cfg, cmd.ErrOrStderr()); code != interchange.ExitOK {
				cmd.SilenceErrors = true // RunStandalone has written the reason
				return &exitCodeError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv(wire.InterchangeConfigEnv),
		"interchange configuration file (default $"+wire.InterchangeConfigEnv+")")
	cmd.Flags().StringVar(&initDir, "init", "", "write a new configuration, secret and certificates into this directory and exit")
	cmd.Flags().StringVar(&poolAddr, "pool-address", "0.0.0.0:0", "with --init: where pools connect")
	cmd.Flags().StringVar(&driverAddr, "driver-address", "127.0.0.1:0", "with --init: where the driver connects")
	cmd.Flags().BoolVar(&plain, "no-tls", false, "with --init: plain TCP instead of TLS (the secret still authenticates)")
	return cmd
}
