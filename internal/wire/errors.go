package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/parsl-go/parsl/internal/failure"
)

// FromError turns a task failure in a pool into its wire form.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var (
		ae *failure.AppError
		be *failure.BashExitError
		we *failure.WalltimeError
		me *failure.MissingOutputsError
		se *failure.SerializationError
		wl *failure.WorkerLostError
	)
	switch {
	case errors.As(err, &be):
		return &Error{Kind: ErrBashExit, Message: err.Error(), ExitCode: be.ExitCode, StderrTail: be.StderrTail, StderrPath: be.Stderr}
	case errors.As(err, &we):
		return &Error{Kind: ErrWalltime, Message: err.Error()}
	case errors.As(err, &me):
		return &Error{Kind: ErrMissingOutputs, Message: err.Error(), Paths: me.Paths}
	case errors.As(err, &se):
		// Type carries the rule broken, if any (see SerializationError.Rule).
		return &Error{Kind: ErrSerialization, Type: se.Rule, Message: se.Err.Error(), Arg: se.Arg}
	case errors.As(err, &wl):
		return &Error{Kind: ErrWorkerLost, Message: wl.Reason}
	case errors.As(err, &ae):
		return &Error{Kind: ErrApp, Type: ae.Kind, Message: ae.Message, Stack: ae.Stack, Panicked: ae.Panicked}
	}
	return &Error{Kind: ErrOther, Type: fmt.Sprintf("%T", err), Message: err.Error()}
}

// ToError rebuilds the driver-side error of a failed try of task id of app
// (walltime is the try's walltime), on a pool on host.
func (e *Error) ToError(id int64, app string, walltime time.Duration, host string) error {
	switch e.Kind {
	case ErrBashExit:
		return &failure.BashExitError{TaskID: id, App: app, ExitCode: e.ExitCode, Stderr: e.StderrPath, StderrTail: e.StderrTail}
	case ErrWalltime:
		return &failure.WalltimeError{TaskID: id, App: app, Walltime: walltime}
	case ErrMissingOutputs:
		return &failure.MissingOutputsError{TaskID: id, App: app, Paths: e.Paths}
	case ErrSerialization:
		return &failure.SerializationError{TaskID: id, App: app, Arg: e.Arg, Rule: e.Type, Err: errors.New(e.Message)}
	case ErrWorkerLost:
		return &failure.WorkerLostError{TaskID: id, Hostname: host, Reason: e.Message}
	case ErrManagerLost:
		return &failure.ManagerLostError{TaskID: id, Hostname: host, Reason: e.Message}
	case ErrUnknownApp:
		return &failure.AppError{TaskID: id, App: app, Kind: "unknown app", Message: e.Message}
	case ErrApp:
		return &failure.AppError{TaskID: id, App: app, Kind: e.Type, Message: e.Message, Stack: e.Stack, Panicked: e.Panicked}
	}
	return &failure.AppError{TaskID: id, App: app, Kind: e.Type, Message: e.Message}
}
