package parsl

import (
	"fmt"
	"os"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/workerpool"
)

// RoleEnv is the environment variable that turns a program into a worker
// pool or an interchange when parsl.Main runs.
const RoleEnv = "PARSL_ROLE"

// roles maps a PARSL_ROLE value to the function that serves it. Executors
// that start copies of the binary register here.
var roles = map[string]func() int{
	"pool":        workerpool.Main,
	"interchange": interchange.Main,
}

// Main must be the first statement of main (and of TestMain). When the
// program was started as a worker pool or interchange (PARSL_ROLE set), it
// serves that role and exits; otherwise it returns at once.
func Main() {
	role := os.Getenv(RoleEnv)
	if role == "" {
		return
	}
	serve, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "parsl: %s=%q is not a role this binary can serve (this build supports: %v); unset %s to run the program normally\n",
			RoleEnv, role, roleNames(), RoleEnv)
		os.Exit(2)
	}
	os.Exit(serve())
}

func roleNames() []string {
	names := make([]string, 0, len(roles))
	for n := range roles {
		names = append(names, n)
	}
	return names
}
