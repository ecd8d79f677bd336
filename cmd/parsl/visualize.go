package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/store"
)

// newVisualizeCmd is parsl-visualize: the dashboard over a monitoring
// database, for finished runs (and for runs in progress in another process:
// the database is shared safely in WAL mode).
func newVisualizeCmd() *cobra.Command {
	var db, listen string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "visualize [--db PATH] [--listen ADDR]",
		Short: "Serve the monitoring dashboard of a database",
		Long: `Serve the monitoring dashboard: workflows, each workflow's state counts and
apps, its tasks, a Gantt chart, the dependency graph, resource usage and
every task's tries and errors, from a monitoring database written by a run
with Config.Monitoring set. Runs still in progress update live.

The default database is ./runinfo/monitoring.db, where runs write it by
default. The default address is loopback only: the dashboard has no
authentication. Requests must name the server by its listen address in
their Host header (a defence against DNS rebinding), unless it listens on
all interfaces; --allow-host adds a name, e.g. that of a reverse proxy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return visualize(cmd.Context(), cmd, db, listen, hosts)
		},
	}
	cmd.Flags().StringVar(&db, "db", "runinfo/monitoring.db", "monitoring database (SQLite) to show")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on; port 0 picks a free one")
	cmd.Flags().StringSliceVar(&hosts, "allow-host", nil, "further name the Host header may give (repeatable; * for any)")
	return cmd
}

func visualize(ctx context.Context, cmd *cobra.Command, db, listen string, hosts []string) error {
	if _, err := os.Stat(db); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no monitoring database at %s: run a workflow with Config.Monitoring set, or give its path with --db", db)
		}
		return fmt.Errorf("monitoring database %s: %w", db, err)
	}
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		return err // names the file, and says when it is newer or not a database
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.Close(cctx)
	}()
	h, err := dashboard.New(dashboard.Options{Store: st, AllowedHosts: hosts})
	if err != nil {
		return err
	}
	srv, err := dashboard.Listen(listen, h)
	if err != nil {
		return err
	}
	srv.Serve()
	fmt.Fprintf(cmd.OutOrStdout(), "dashboard of %s at %s (Ctrl-C stops)\n", db, srv.URL())
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Close(cctx)
}
