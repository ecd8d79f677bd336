// Package wire is the protocol between the driver's interchange and worker
// pools: length-prefixed frames carrying CBOR messages, many tasks or
// results per frame, and a handshake that checks the protocol version, the
// build and the app registry, and authenticates both sides with an HMAC over
// a per-run secret.
//
// A frame is a 4-byte big-endian payload length, a 1-byte message type, and
// the CBOR payload. Readers refuse frames above a size limit before reading
// them, so a hostile or broken peer cannot make the reader allocate much.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parsl-go/parsl/executor"
	"github.com/parsl-go/parsl/internal/codec"
)

// ProtocolVersion changes whenever a message changes incompatibly.
const ProtocolVersion = 1

// DefaultMaxFrame is the largest frame accepted unless configured otherwise.
const DefaultMaxFrame = 64 << 20

// The deepest nesting an argument or a result may have: codec.MaxNesting
// less the levels of the frame around it (Tasks map, task list, Task map,
// argument list; Results or Deliver map, result list, Result map). A
// deeper value would make the peer refuse the whole frame, so the side
// that encodes it fails the one task instead (TestNestingLimits pins
// these numbers).
const (
	MaxArgNesting    = codec.MaxNesting - 4
	MaxResultNesting = codec.MaxNesting - 3
)

// Type is the kind of message a frame carries.
type Type uint8

// Message types.
const (
	TChallenge Type = iota + 1 // interchange → pool: start of the handshake
	THello                     // pool → interchange: identity and proof of the secret
	TWelcome                   // interchange → pool: accepted
	TRefuse                    // interchange → pool: refused, with the reason
	TTasks                     // interchange → pool: a batch of tasks
	TResults                   // pool → interchange: a batch of results
	THeartbeat                 // both ways: still alive
	TDrain                     // pool → interchange: take no more tasks
	TShutdown                  // interchange → pool: exit now
	// The driver link of a standalone interchange (see driver.go). The
	// types are new numbers, so pools, which never see them, are
	// unaffected.
	TSubmit  // driver → interchange: a batch of encoded tasks
	TDeliver // interchange → driver: results from one manager
	TStatus  // interchange → driver: managers, joins, leaves, refusals
	TControl // driver → interchange: purge, drain a block, shut down
	// Monitoring (see monitor.go), negotiated through Welcome.Monitor so
	// that no peer gets a type it does not know.
	TMonitor     // pool → interchange: node info and resource samples
	TMonitorFrom // interchange → driver: TMonitor with the manager it came from
	maxType
)

func (t Type) String() string {
	names := [...]string{"", "challenge", "hello", "welcome", "refuse", "tasks", "results", "heartbeat", "drain", "shutdown", "submit", "deliver", "status", "control", "monitor", "monitor-from"}
	if t > 0 && t < maxType {
		return names[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Challenge opens the handshake.
type Challenge struct {
	Protocol int    `cbor:"p"`
	Nonce    []byte `cbor:"n"`
}

// Hello identifies a pool.
type Hello struct {
	Protocol int    `cbor:"p"`
	BuildID  string `cbor:"b"`
	Digest   string `cbor:"d"`
	// Generic pools (parsl pool) run bash apps only and are not held to the
	// driver's build and registry.
	Generic  bool   `cbor:"g,omitempty"`
	Manager  string `cbor:"m"`
	Hostname string `cbor:"h"`
	BlockID  string `cbor:"k"`
	Workers  int    `cbor:"w"`
	Prefetch int    `cbor:"f"`
	// Walltime left for the pool's block; 0 = unknown. The interchange
	// sends no task that cannot finish before it.
	WalltimeLeft time.Duration `cbor:"t,omitempty"`
	// Role is RoleDriver for a driver joining a standalone interchange
	// and empty for a pool; omitted when empty, so a pool's hello (and
	// its MAC) is unchanged.
	Role        string `cbor:"role,omitempty"`
	ClientNonce []byte `cbor:"cn"`
	MAC         []byte `cbor:"mac"`
}

// Welcome accepts a pool.
type Welcome struct {
	HeartbeatPeriod    time.Duration `cbor:"hp"`
	HeartbeatThreshold time.Duration `cbor:"ht"`
	// Monitor says the interchange accepts TMonitor frames (and, on a
	// standalone interchange's driver address, that it forwards them as
	// TMonitorFrom after OpMonitor). Older interchanges leave it false,
	// and older peers ignore it: the MAC does not cover it.
	Monitor bool `cbor:"mon,omitempty"`
	// MAC proves to the pool that the interchange knows the secret too.
	MAC []byte `cbor:"mac"`
}

// Refuse turns a pool away; Reason says what differs and what to do.
type Refuse struct {
	Reason string `cbor:"r"`
}

// Task is one try of a task as it crosses the wire.
type Task struct {
	ID        int64                 `cbor:"i"`
	Try       int                   `cbor:"t,omitempty"`
	App       string                `cbor:"a"`
	Args      []codec.RawMessage    `cbor:"g,omitempty"`
	Command   string                `cbor:"c,omitempty"`
	Walltime  time.Duration         `cbor:"w,omitempty"`
	Stdout    string                `cbor:"o,omitempty"`
	Stderr    string                `cbor:"e,omitempty"`
	Truncate  bool                  `cbor:"tr,omitempty"`
	Outputs   []string              `cbor:"out,omitempty"`
	Priority  int                   `cbor:"p,omitempty"`
	Resources executor.ResourceSpec `cbor:"r,omitempty"`
}

// ErrorKind classifies a remote failure so the driver can rebuild the
// right error type.
type ErrorKind uint8

// Error kinds.
const (
	ErrApp            ErrorKind = iota + 1 // the app returned an error or panicked
	ErrBashExit                            // non-zero exit code
	ErrWalltime                            // walltime passed
	ErrMissingOutputs                      // declared outputs not created
	ErrSerialization                       // argument or result would not encode/decode
	ErrUnknownApp                          // the pool has no such app
	ErrWorkerLost                          // the worker died
	ErrManagerLost                         // the pool was lost (set by the interchange)
	ErrOther                               // anything else (message says)
)

// Error is a task failure as it crosses the wire.
type Error struct {
	Kind     ErrorKind `cbor:"k"`
	Type     string    `cbor:"t,omitempty"` // Go type of the original error
	Message  string    `cbor:"m"`
	Stack    string    `cbor:"s,omitempty"`
	Panicked bool      `cbor:"p,omitempty"`
	ExitCode int       `cbor:"x,omitempty"`
	Paths    []string  `cbor:"paths,omitempty"`
	Arg      int       `cbor:"arg,omitempty"`
	// StderrTail and StderrPath are a bash failure's
	// BashExitError.StderrTail and Stderr. Both are omitted when empty, so
	// peers of either version decode each other's frames (unknown keys
	// are ignored) and the protocol version is unchanged.
	StderrTail string `cbor:"st,omitempty"`
	StderrPath string `cbor:"sp,omitempty"`
}

// Result is the outcome of one try.
type Result struct {
	ID     int64            `cbor:"i"`
	Try    int              `cbor:"t,omitempty"`
	Result codec.RawMessage `cbor:"r,omitempty"`
	Err    *Error           `cbor:"e,omitempty"`
}

// Tasks is a batch of tasks.
type Tasks struct {
	Tasks []Task `cbor:"t"`
}

// Results is a batch of results.
type Results struct {
	Results []Result `cbor:"r"`
}

// FrameError is a frame that cannot be accepted: too large, truncated, of
// an unknown type, or not decodable. The connection it came from should be
// dropped.
type FrameError struct {
	Reason string
	Err    error
}

func (e *FrameError) Error() string {
	if e.Err != nil {
		return "wire: bad frame: " + e.Reason + ": " + e.Err.Error()
	}
	return "wire: bad frame: " + e.Reason
}

// Unwrap returns the underlying error.
func (e *FrameError) Unwrap() error { return e.Err }

// WriteFrame encodes v and writes one frame to w. It does not flush, so
// that several frames can go out in one write.
func WriteFrame(w *bufio.Writer, t Type, v any) error {
	var payload []byte
	if v != nil {
		var err error
		payload, err = codec.Marshal(v)
		if err != nil {
			return fmt.Errorf("wire: encoding %s: %w", t, err)
		}
	}
	return WriteRaw(w, t, payload)
}

// WriteRaw writes one frame with an already encoded payload.
func WriteRaw(w *bufio.Writer, t Type, payload []byte) error {
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(payload)))
	hdr[4] = byte(t)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrame reads one frame. A frame larger than max, of an unknown type,
// or cut short is a *FrameError; a clean end of stream before a frame is
// io.EOF.
func ReadFrame(r *bufio.Reader, max int) (Type, []byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, &FrameError{Reason: "truncated header", Err: err}
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	t := Type(hdr[4])
	if t == 0 || t >= maxType {
		return 0, nil, &FrameError{Reason: fmt.Sprintf("unknown message type %d", hdr[4])}
	}
	if uint64(n) > uint64(max) {
		return 0, nil, &FrameError{Reason: fmt.Sprintf("%s frame of %d bytes exceeds the limit of %d", t, n, max)}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, &FrameError{Reason: fmt.Sprintf("truncated %s frame", t), Err: io.ErrUnexpectedEOF}
		}
		return 0, nil, err
	}
	return t, payload, nil
}

// Decode decodes a payload into v; failures are *FrameError.
func Decode(t Type, payload []byte, v any) error {
	if err := codec.Unmarshal(payload, v); err != nil {
		return &FrameError{Reason: fmt.Sprintf("undecodable %s payload", t), Err: err}
	}
	return nil
}
