package parsl

import (
	"github.com/parsl-go/parsl/internal/failure"
	"github.com/parsl-go/parsl/memo"
)

// Errors a task can end with. All work with errors.As and errors.Is.
type (
	// AppError is a failure of the app's own code: a returned error or a panic.
	AppError = failure.AppError
	// DependencyError is a task that never ran because inputs failed.
	DependencyError = failure.DependencyError
	// FailedDep names one failed upstream task in a DependencyError or JoinError.
	FailedDep = failure.FailedDep
	// JoinError is a join app whose inner tasks failed.
	JoinError = failure.JoinError
	// BashExitError is a bash app that exited non-zero.
	BashExitError = failure.BashExitError
	// WalltimeError is a task stopped at its walltime.
	WalltimeError = failure.WalltimeError
	// MissingOutputsError is a task that did not create its declared outputs.
	MissingOutputsError = failure.MissingOutputsError
	// SerializationError is an argument or result that cannot be encoded.
	SerializationError = failure.SerializationError
	// ManagerLostError is a task whose worker pool was lost (retryable).
	ManagerLostError = failure.ManagerLostError
	// WorkerLostError is a task whose worker died.
	WorkerLostError = failure.WorkerLostError
	// UnsupportedFeatureError is a request an executor cannot honour.
	UnsupportedFeatureError = failure.UnsupportedFeatureError
	// ExecutorError is a task that could not be handed to its executor.
	ExecutorError = failure.ExecutorError
	// RetryError is the final failure of a task tried more than once; it
	// keeps every attempt's error.
	RetryError = failure.RetryError
	// CancelledError is a task that Close (or a signal) cancelled before it
	// finished; errors.Is(err, ErrDFKClosed) holds for it.
	CancelledError = failure.CancelledError
	// ConfigError is an invalid Config.
	ConfigError = failure.ConfigError
	// JournalError, from Close, counts results that could not be written
	// to the checkpoint (a full disk): a resumed run runs those tasks again.
	JournalError = memo.JournalError
)

// ErrDFKClosed is the error of a task submitted after Close, or cancelled by
// a Close that stopped waiting.
var ErrDFKClosed = failure.ErrDFKClosed
