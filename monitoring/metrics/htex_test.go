package metrics_test

import (
	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/monitoring/metrics"
)

// htex is the executor the pool gauges are for: keep it satisfying the
// interface, or parsl_managers and friends silently disappear.
var _ metrics.PoolReporter = (*htex.Executor)(nil)
