// Package parsl is Parsl for Go: parallel workflows of typed apps and
// futures, run by a dataflow kernel on pluggable executors.
//
// An app is an ordinary Go function registered by name at package level:
//
//	var Add = parsl.Register2("demo.add", func(ctx context.Context, a, b int) (int, error) {
//		return a + b, nil
//	})
//
// Submitting an app returns a *Future at once. A future passed as an
// argument to another app is a dependency, so the program builds its task
// graph as it runs, with no workflow language:
//
//	x := Add.Submit(dfk, parsl.Val(1), parsl.Val(2))
//	y := Add.Submit(dfk, x, parsl.Val(10))      // runs when x is done
//	v, err := y.Get(ctx)                          // 13
//
// Arguments are typed (Arg[T]): passing a Future[string] where an int is
// expected does not compile.
//
// Three kinds of app exist: Go apps (Register0..6), bash apps whose
// function returns a command line (RegisterBash0..6), and join apps that run
// on the driver and return a future of inner tasks (RegisterJoin0..6).
//
// Load starts a DataFlowKernel (DFK) from a Config; the zero Config runs
// tasks on goroutines in this process. Close waits for the tasks, writes the
// checkpoint and stops the executors. parsl.Main must be the first statement
// of main so that the same binary can serve as a worker pool.
//
// # Only package-level state reaches the pools
//
// A worker pool is a copy of the program that never runs main past
// parsl.Main. An app that reads a flag or a global set in main works on the
// threads executor and sees the zero value on worker pools. Pass such
// values as arguments, compute them at package level or in init, or give
// them to the pools as environment variables (htex.Options.WorkerEnv).
//
// # What can cross to a worker
//
// The arguments and result of a Go app cross to a worker pool (htex) as
// CBOR; on the threads executor they stay in memory. So that a workflow
// tested on threads gives the same values on htex, the same rules hold on
// both:
//
//   - Types must round-trip: exported struct fields (an unexported field
//     would arrive as its zero value; tag it `cbor:"-"` if that is fine, or
//     give the type MarshalCBOR/UnmarshalCBOR or MarshalBinary/
//     UnmarshalBinary), no funcs, channels or complex numbers, and no
//     interface types with methods (error, io.Reader: CBOR carries no Go
//     types). Register panics on a Go app whose parameter or result type
//     breaks this, naming the field.
//   - An interface (any, also inside a struct, slice or map) may hold only
//     plain data: nil, bool, int, float64, string, []byte, and []any or
//     map[string]any of plain data. Anything else (a struct, a pointer, an
//     int64, a []int) would come back from a worker as something else, so
//     it fails the task with a *SerializationError on every executor. Give
//     the parameter a concrete type instead.
//   - A value with a cycle cannot be encoded; on htex (and in memo keys,
//     whatever the executor) it fails its task with a *SerializationError.
//   - Worker pools decode at most 64 levels of nesting (a value inside its
//     message: 60 for an argument, 61 for a result), 16,777,216 array
//     elements and 4,194,304 map pairs, and frames up to htex
//     Options.MaxFrame (64 MiB). A value past a limit fails its own task,
//     before it is sent, with a *SerializationError whose Rule names the
//     limit. Pass large data in a file (parsl.File) instead.
//
// A SerializationError is never retried: the same value fails the same way.
//
// Failures are values: *AppError (including panics, with their stack),
// *DependencyError, *BashExitError, *WalltimeError, *RetryError and more,
// all usable with errors.As. Retries, memoization (WithCache) and
// checkpoints (Config.CheckpointMode) follow Python Parsl's rules.
package parsl
