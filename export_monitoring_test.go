package parsl

import "time"

// SetMonitoringHeartbeat sets the monitoring heartbeat period of the DFKs
// loaded after it, for tests that wait for a killed driver's run to go
// stale.
func SetMonitoringHeartbeat(d time.Duration) { monitoringHeartbeat = d }
