package wire

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// PoolConfigEnv names the environment variable that holds the path of a
// pool's configuration file. The driver writes the file (mode 0600, since
// it names the secret) and starts pools with PARSL_ROLE=pool and this set.
const PoolConfigEnv = "PARSL_POOL_CONFIG"

// BlockIDEnv overrides PoolConfig.BlockID, so one file serves every block.
const BlockIDEnv = "PARSL_BLOCK_ID"

// PoolConfig is what a worker pool needs to find and join its interchange.
type PoolConfig struct {
	// Addresses are host:port candidates for the interchange, tried in order.
	Addresses []string `json:"addresses"`
	// CAFile is the PEM of the run's CA; "" means plaintext TCP
	// (Encrypted: false).
	CAFile string `json:"ca_file,omitempty"`
	// ServerName is the name in the interchange's certificate.
	ServerName string `json:"server_name,omitempty"`
	// SecretFile holds the per-run HMAC secret (hex).
	SecretFile string `json:"secret_file"`
	BlockID    string `json:"block_id,omitempty"`
	// Workers is the number of concurrent tasks (max workers per node).
	Workers  int `json:"workers"`
	Prefetch int `json:"prefetch,omitempty"`
	// CoresPerWorker and MemPerWorkerMB bound Workers by the node's size
	// when set.
	CoresPerWorker float64 `json:"cores_per_worker,omitempty"`
	MemPerWorkerMB int     `json:"mem_per_worker_mb,omitempty"`
	// Accelerators are device names; one is pinned to each worker.
	Accelerators       []string      `json:"accelerators,omitempty"`
	HeartbeatPeriod    time.Duration `json:"heartbeat_period"`
	HeartbeatThreshold time.Duration `json:"heartbeat_threshold"`
	// DrainPeriod starts draining that long after the pool starts (0 = never).
	DrainPeriod time.Duration `json:"drain_period,omitempty"`
	// Walltime of the block (0 = unknown): the pool drains before it ends.
	Walltime time.Duration `json:"walltime,omitempty"`
	// IdleTimeout makes an idle pool exit (0 = never).
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	LogDir      string        `json:"log_dir,omitempty"`
	MaxFrame    int           `json:"max_frame,omitempty"`
	// Generic marks the bash-only pool (parsl pool).
	Generic bool `json:"generic,omitempty"`
	// Monitor makes the pool send its node's description and resource
	// samples of its running tasks (TMonitor), when the interchange
	// accepts them. MonitorInterval is the sampling period; 0 samples
	// each task only at its start and end, a negative value not at all
	// (the node's description only).
	Monitor         bool          `json:"monitor,omitempty"`
	MonitorInterval time.Duration `json:"monitor_interval,omitempty"`
}

// WritePoolConfig writes c to path with mode 0600.
func WritePoolConfig(path string, c PoolConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ReadPoolConfig reads a pool configuration file; BlockIDEnv overrides the
// block ID.
func ReadPoolConfig(path string) (PoolConfig, error) {
	var c PoolConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("parsl pool: reading configuration %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parsl pool: configuration %s is not valid: %w", path, err)
	}
	if id := os.Getenv(BlockIDEnv); id != "" {
		c.BlockID = id
	}
	if len(c.Addresses) == 0 {
		return c, fmt.Errorf("parsl pool: configuration %s names no interchange address", path)
	}
	return c, nil
}
