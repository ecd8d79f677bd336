package parsl

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/parsl-go/parsl/monitoring"
	"github.com/parsl-go/parsl/monitoring/dashboard"
	"github.com/parsl-go/parsl/monitoring/metrics"
)

// startDashboard serves the live dashboard over the hub's database, with
// the Prometheus metrics at /metrics on the same port.
func (d *DFK) startDashboard(addr string, hub *monitoring.Hub, col *metrics.Collector, logger *slog.Logger) error {
	h, err := dashboard.New(dashboard.Options{Store: hub.Store(), Metrics: col.Handler(),
		Logger: logger.With("component", "dashboard")})
	if err != nil {
		return fmt.Errorf("parsl: starting the dashboard: %w", err)
	}
	srv, err := dashboard.Listen(addr, h)
	if err != nil {
		return fmt.Errorf("parsl: starting the dashboard (Monitoring.DashboardAddr %q): %w", addr, err)
	}
	// The run's workflow row must be committed before the first page is
	// asked for it, or the run's own page would be a 404 for its first
	// flush interval.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hub.Store().Sync(ctx); err != nil {
		_ = srv.Close(ctx)
		return fmt.Errorf("parsl: starting the dashboard: %w", err)
	}
	srv.Serve()
	d.dash = srv
	logger.Info("dashboard up", "url", srv.URL()+"workflow/"+hub.RunID()+"/")
	return nil
}

// closeDashboard stops the live dashboard, if any, giving page requests in
// progress a few seconds; live pages then show that the stream ended.
func (d *DFK) closeDashboard() {
	if d.dash == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.dash.Close(ctx); err != nil {
		slog.Default().Warn("dashboard did not stop cleanly", "err", err)
	}
}

// DashboardURL returns the live dashboard's page for this run when
// Monitoring.DashboardAddr is set, and "" otherwise.
func (d *DFK) DashboardURL() string {
	if d == nil || d.dash == nil || d.hub == nil {
		return ""
	}
	return d.dash.URL() + "workflow/" + d.hub.RunID() + "/"
}

// DashboardAddr returns the address the live dashboard listens on, with the
// real port when Monitoring.DashboardAddr asked for port 0, or nil.
func (d *DFK) DashboardAddr() net.Addr {
	if d == nil || d.dash == nil {
		return nil
	}
	return d.dash.Addr()
}
