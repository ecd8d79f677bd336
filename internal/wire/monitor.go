package wire

import "time"

// Monitoring messages. A pool whose configuration has Monitor set, and
// whose interchange said Welcome.Monitor, sends TMonitor frames: first its
// node's description, then resource samples of its running tasks. An
// interchange in the driver hands them to the executor; a standalone one
// forwards them to a driver that asked with OpMonitor (after its own
// Welcome.Monitor) as TMonitorFrom frames. Peers that predate these
// messages never see them: that negotiation is the compatibility rule,
// and ProtocolVersion is unchanged.

// OpMonitor is the Control operation by which a driver asks a standalone
// interchange to forward monitoring messages.
const OpMonitor = "monitor"

// NodeInfo describes the node a pool runs on. The hostname, block and
// worker count are in the pool's Hello already.
type NodeInfo struct {
	// CPUs is the number of CPUs the pool sees (or $PARSL_CORES).
	CPUs int `cbor:"c"`
	// MemoryBytes is the node's memory (MemTotal, or $PARSL_MEMORY_GB).
	MemoryBytes int64 `cbor:"m"`
	// Runtime is the pool's Go version, recorded where Parsl records the
	// worker's Python version.
	Runtime string `cbor:"v,omitempty"`
}

// ResourceSample is the resource use of one running try at one moment.
//
// For a bash app the numbers are those of the command's process tree
// (the shell and its descendants). For a Go app they are those of the
// whole pool process, because the app is a goroutine in it: every Go task
// running at the same time reports the same numbers, with Pool set.
type ResourceSample struct {
	TaskID int64 `cbor:"i"`
	Try    int   `cbor:"t,omitempty"`
	// Time is when the sample was read, in Unix nanoseconds on the pool's
	// clock.
	Time int64 `cbor:"ts"`
	// Pool marks a Go app's sample (the pool process's numbers).
	Pool bool `cbor:"pool,omitempty"`
	// PID is the root process of the sample.
	PID int `cbor:"p"`
	// Processes counts the tree (root included); Threads sums its threads.
	Processes int `cbor:"n,omitempty"`
	Threads   int `cbor:"th,omitempty"`
	// CPU time used so far, in seconds.
	UserSeconds   float64 `cbor:"u,omitempty"`
	SystemSeconds float64 `cbor:"s,omitempty"`
	// Memory in bytes, and resident memory as a percentage of the node's.
	RSS           int64   `cbor:"r,omitempty"`
	VMS           int64   `cbor:"v,omitempty"`
	MemoryPercent float64 `cbor:"mp,omitempty"`
	// Bytes passed to read and write calls (psutil's read_chars and
	// write_chars); IOKnown is false when /proc/<pid>/io was unreadable.
	ReadBytes  int64 `cbor:"rd,omitempty"`
	WriteBytes int64 `cbor:"wr,omitempty"`
	IOKnown    bool  `cbor:"io,omitempty"`
	// Context switches summed over the tree.
	CtxVoluntary   int64 `cbor:"cv,omitempty"`
	CtxInvoluntary int64 `cbor:"ci,omitempty"`
	// Status is the root's state in psutil's words ("running",
	// "sleeping", ...); CPU the processor it last ran on.
	Status string `cbor:"st,omitempty"`
	CPU    int    `cbor:"cpu,omitempty"`
	// Interval is the pool's sampling interval (0: start and end only).
	Interval time.Duration `cbor:"iv,omitempty"`
}

// Monitor is the payload of TMonitor.
type Monitor struct {
	// Node is set in the first message of a pool.
	Node      *NodeInfo        `cbor:"n,omitempty"`
	Resources []ResourceSample `cbor:"r,omitempty"`
}

// MonitorFrom is the payload of TMonitorFrom: a pool's TMonitor and the
// manager it came from.
type MonitorFrom struct {
	From    ManagerState `cbor:"f"`
	Monitor Monitor      `cbor:"m"`
}
