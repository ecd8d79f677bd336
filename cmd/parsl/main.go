// Command parsl is the command-line tool of Parsl for Go.
//
//	parsl version    prints the module version, VCS revision and Go version
//	parsl perf       measures task throughput, latency and memory, like
//	                 Python's parsl-perf
//	parsl pool       runs a generic (bash-only) worker pool for the
//	                 high-throughput executor
//	parsl interchange runs a standalone interchange for the
//	                 high-throughput executor
//	parsl visualize  serves the monitoring dashboard of a database
package main

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/parsl-go/parsl"
)

func main() {
	parsl.Main()
	if err := newRootCmd().ExecuteContext(context.Background()); err != nil {
		// Cobra (or the command) has already printed the reason to stderr.
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// newRootCmd builds the command tree. Commands return errors and never call
// os.Exit, so tests can run them in-process.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "parsl",
		Short:         "Parsl for Go: tools for workflows",
		SilenceUsage:  true, // a failed run is not a usage mistake
		SilenceErrors: false,
	}
	root.AddCommand(newVersionCmd(), newPerfCmd(), newPoolCmd())
	root.AddCommand(newInterchangeCmd(), newVisualizeCmd())
	return root
}
