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
//
// Because a pool never returns from Main, the rest of main never
// runs there: flags parsed in main, globals assigned in main and anything
// else main computes exist on the driver only. On the threads executor an
// app sees them; on worker pools (htex, every cluster) it sees the zero
// value. Give apps what they need in one of these ways, which work on every
// executor:
//   - pass it as an argument (parsl.Val(*threshold)): the usual way;
//   - compute it at package level or in init, which pools run too;
//   - set an environment variable for the pools with htex.Options.WorkerEnv
//     (worker_env in a config file) and read it in the app.
//
// A program that forgets Main and loads a DFK in a pool fails Load with a
// *MainMissingError rather than starting pools of its own.
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

// MainMissingError is the error of Load in a process that was started to
// serve a role (a worker pool or an interchange: PARSL_ROLE set) but reached
// Load instead, because the program does not call parsl.Main first. Such a
// process must never run the workflow: it would start pools of its own, and
// each of those another copy of the program, without end.
type MainMissingError struct {
	// Role is the value of PARSL_ROLE this process was started with.
	Role string
}

func (e *MainMissingError) Error() string {
	return fmt.Sprintf("parsl: this process was started as %s (%s=%s) but reached parsl.Load: the program does not call parsl.Main(); "+
		"make parsl.Main() the first statement of main (and of TestMain), before flag parsing or any other work", roleNoun(e.Role), RoleEnv, e.Role)
}

func roleNoun(role string) string {
	switch role {
	case "pool":
		return "a worker pool"
	case "interchange":
		return "an interchange"
	}
	return "a parsl helper process"
}

// checkNotServing refuses to load a DFK in a process started to serve a
// role. It runs before anything is created (run directory, log, executors).
func checkNotServing() error {
	if role := os.Getenv(RoleEnv); role != "" {
		return &MainMissingError{Role: role}
	}
	return nil
}

func roleNames() []string {
	names := make([]string, 0, len(roles))
	for n := range roles {
		names = append(names, n)
	}
	return names
}
