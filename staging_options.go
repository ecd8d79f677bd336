package parsl

import (
	"sync"
	"sync/atomic"

	"github.com/parsl-go/parsl/internal/dataflow"
)

// fileOptions are the call options about files (Outputs, WorkDir). They
// are not fields of dataflow.CallOptions, which executors see and copy:
// they only matter at submit, where stageFiles turns them into local
// paths in CallOptions.Outputs and rewritten arguments.
type fileOptions struct {
	outputs    []File
	workDir    string
	hasWorkDir bool
}

// CallOption is a func(*dataflow.CallOptions), so an option that is not
// a field there reaches stageFiles through this table, keyed by the
// CallOptions being built. An entry lives only from the option's
// application to the end of the same stageFiles call, on one goroutine;
// pendingCount lets submits without file options skip the lookup.
var (
	pendingFiles sync.Map // *dataflow.CallOptions → *fileOptions
	pendingCount atomic.Int64
)

// pendingFileOptions returns the file options being collected for o, or
// nil when options are not applied by stageFiles.
func pendingFileOptions(o *dataflow.CallOptions) *fileOptions {
	if o == nil || o == dataflow.DefaultCallOptions {
		return nil
	}
	if v, ok := pendingFiles.Load(o); ok {
		return v.(*fileOptions)
	}
	fo := &fileOptions{}
	pendingFiles.Store(o, fo)
	pendingCount.Add(1)
	return fo
}

// applyOptions builds the CallOptions of one submit and collects its file
// options (nil when there are none).
func applyOptions(opts []CallOption) (*dataflow.CallOptions, *fileOptions) {
	if len(opts) == 0 {
		return dataflow.DefaultCallOptions, nil
	}
	co := &dataflow.CallOptions{}
	for _, o := range opts {
		if o != nil {
			o(co)
		}
	}
	if pendingCount.Load() == 0 {
		return co, nil
	}
	v, ok := pendingFiles.LoadAndDelete(co)
	if !ok {
		return co, nil
	}
	pendingCount.Add(-1)
	return co, v.(*fileOptions)
}
