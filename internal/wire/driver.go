package wire

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The driver link. A standalone interchange (PARSL_ROLE=interchange, or
// `parsl interchange`) listens for pools as the in-process one does, and
// on a second address for the driver. The driver connects with the same
// TLS CA and the same challenge/hello/welcome handshake on the run's
// secret, with Hello.Role = RoleDriver (the server's Expect.Role keeps
// pools and drivers at their own addresses). Then:
//
//	driver → interchange: TSubmit (batches of encoded tasks), TControl,
//	                      THeartbeat
//	interchange → driver: TDeliver (results and ErrManagerLost failures,
//	                      with the manager), TStatus (managers, joins,
//	                      leaves, refusals; also the heartbeat)
//
// Results that arrive while no driver is connected are kept and sent to
// the next driver; with no driver for the grace period the interchange
// tells pools to exit and exits.

// RoleDriver is Hello.Role for the executor connecting to a standalone
// interchange (`parsl interchange`, PARSL_ROLE=interchange).
const RoleDriver = "driver"

// InterchangeConfigEnv names the configuration file of a standalone
// interchange started with PARSL_ROLE=interchange.
const InterchangeConfigEnv = "PARSL_INTERCHANGE_CONFIG"

// SubmitItem is one task the driver gives a standalone interchange: the
// queueing keys and the already encoded Task, which the interchange
// forwards to a pool without decoding it.
type SubmitItem struct {
	ID       int64         `cbor:"i"`
	Try      int           `cbor:"t,omitempty"`
	Priority int           `cbor:"p,omitempty"`
	Walltime time.Duration `cbor:"w,omitempty"`
	Bash     bool          `cbor:"b,omitempty"`
	Payload  []byte        `cbor:"x"`
}

// Submit is the payload of TSubmit.
type Submit struct {
	Items []SubmitItem `cbor:"i"`
}

// ManagerState describes a manager to the driver (interchange.ManagerInfo
// on the wire). Times are Unix nanoseconds, 0 for none.
type ManagerState struct {
	ID        string `cbor:"i"`
	Name      string `cbor:"n"`
	Hostname  string `cbor:"h"`
	BlockID   string `cbor:"k"`
	Workers   int    `cbor:"w"`
	Prefetch  int    `cbor:"f,omitempty"`
	Generic   bool   `cbor:"g,omitempty"`
	InFlight  int    `cbor:"q,omitempty"`
	Draining  bool   `cbor:"d,omitempty"`
	IdleSince int64  `cbor:"is,omitempty"`
	Deadline  int64  `cbor:"dl,omitempty"`
}

// Deliver is the payload of TDeliver: results (or the interchange's own
// ErrManagerLost failures) and the manager they came from.
type Deliver struct {
	Results []Result     `cbor:"r"`
	From    ManagerState `cbor:"f"`
}

// ManagerEvent is a manager joining (Gone false) or leaving.
type ManagerEvent struct {
	Manager ManagerState `cbor:"m"`
	Gone    bool         `cbor:"g,omitempty"`
	Reason  string       `cbor:"r,omitempty"`
}

// Refusal is a pool turned away by the handshake (interchange.Refusal on
// the wire).
type Refusal struct {
	Remote   string `cbor:"a"`
	Auth     bool   `cbor:"u,omitempty"`
	Manager  string `cbor:"m,omitempty"`
	Hostname string `cbor:"h,omitempty"`
	BlockID  string `cbor:"k,omitempty"`
	Reason   string `cbor:"r"`
}

// Status is the payload of TStatus: the managers now, and at most one
// event that caused the frame.
type Status struct {
	Managers []ManagerState `cbor:"m"`
	Queued   int            `cbor:"q,omitempty"`
	Event    *ManagerEvent  `cbor:"e,omitempty"`
	Refused  *Refusal       `cbor:"x,omitempty"`
}

// Control operations.
const (
	OpPurge    = "purge"    // drop every queued task
	OpDrain    = "drain"    // drain the managers of BlockID
	OpShutdown = "shutdown" // tell pools to exit, then exit
)

// Control is the payload of TControl.
type Control struct {
	Op      string `cbor:"o"`
	BlockID string `cbor:"b,omitempty"`
}

// InterchangeConfig configures a standalone interchange. Durations are in
// nanoseconds in JSON, as in PoolConfig.
type InterchangeConfig struct {
	// PoolAddress is where pools connect ("host:port"); default
	// "0.0.0.0:0", since pools run on other hosts.
	PoolAddress string `json:"pool_address,omitempty"`
	// DriverAddress is where the driver connects; default "127.0.0.1:0",
	// right only when the driver runs on the interchange's host.
	DriverAddress string `json:"driver_address,omitempty"`
	// CertFile and KeyFile are the interchange's TLS certificate and key;
	// both empty means plain TCP on both links. CAFile is the CA that
	// signed them, for pools and the driver.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	CAFile   string `json:"ca_file,omitempty"`
	// SecretFile holds the run's HMAC secret in hex.
	SecretFile string `json:"secret_file"`
	// BuildID and Digest, when set, are what pools must match (the
	// driver's registry.BuildID and registry.Digest); empty accepts any
	// pool that knows the secret.
	BuildID string `json:"build_id,omitempty"`
	Digest  string `json:"digest,omitempty"`
	// Heartbeat settings for pools and the driver link.
	HeartbeatPeriod    time.Duration `json:"heartbeat_period,omitempty"`
	HeartbeatThreshold time.Duration `json:"heartbeat_threshold,omitempty"`
	// DriverGrace is how long the interchange keeps pools and queued
	// work without a driver (at start, and after the driver goes) before
	// it tells pools to exit and exits; default HeartbeatThreshold.
	DriverGrace time.Duration `json:"driver_grace,omitempty"`
	// ExitWithDriver is set by a driver that starts the interchange as
	// its own child process (htex Interchange "process"). Such an
	// interchange has no driver to wait for once its parent is gone (a
	// restarted driver starts a child of its own), so it tells pools to
	// exit and exits as soon as its standard input, a pipe whose write end
	// only the driver holds, reaches end of file, or the driver link is
	// lost, instead of serving queued tasks for DriverGrace.
	ExitWithDriver bool `json:"exit_with_driver,omitempty"`
	// AddressFile, when set, is where the interchange writes the
	// addresses it bound (Addresses, as JSON) once it listens.
	AddressFile string `json:"address_file,omitempty"`
	MaxFrame    int    `json:"max_frame,omitempty"`
}

// Addresses is what a standalone interchange writes to its AddressFile.
type Addresses struct {
	// Pools lists what pools should dial, best first.
	Pools []string `json:"pools"`
	// Driver is the driver link's address.
	Driver string `json:"driver"`
	// PID is the interchange's process ID.
	PID int `json:"pid"`
}

// WriteInterchangeConfig writes c to path as JSON, readable only by the
// owner (it names the secret and key files).
func WriteInterchangeConfig(path string, c InterchangeConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ReadInterchangeConfig reads a standalone interchange's configuration.
func ReadInterchangeConfig(path string) (InterchangeConfig, error) {
	var c InterchangeConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("parsl interchange: reading configuration %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parsl interchange: configuration %s is not valid JSON: %w", path, err)
	}
	if c.SecretFile == "" {
		return c, fmt.Errorf("parsl interchange: configuration %s names no secret_file; every run needs a secret", path)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, fmt.Errorf("parsl interchange: configuration %s must name both cert_file and key_file, or neither for plain TCP", path)
	}
	return c, nil
}

// WriteAddresses writes a to path atomically (a temporary file renamed),
// so that a reader polling for it never sees half a file.
func WriteAddresses(path string, a Addresses) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadAddresses reads an address file written by WriteAddresses.
func ReadAddresses(path string) (Addresses, error) {
	var a Addresses
	b, err := os.ReadFile(path)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("parsl interchange: address file %s is not valid: %w", path, err)
	}
	return a, nil
}
