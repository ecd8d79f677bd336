// Package launcher turns a worker-pool command into the command that starts
// it on every node and task slot of a block. A Launcher is a pure function,
// so that what a provider will run can be tested without running it.
package launcher

import "strconv"

// Launcher wraps command so that it runs tasksPerNode times on each of the
// nodesPerBlock nodes of a block.
type Launcher func(command []string, tasksPerNode, nodesPerBlock int) []string

// singleNodeScript starts "$@" WORKERCOUNT times in the background and
// waits for all of them. Like Parsl's SingleNodeLauncher it fails only when
// every copy failed, so that one crashed pool does not end the block.
const singleNodeScript = `WORKERCOUNT=$1; shift
pids=()
for ((i = 0; i < WORKERCOUNT; i++)); do "$@" & pids+=($!); done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -lt "$WORKERCOUNT" ]`

// SingleNode runs every copy on the node where the block starts (the local
// machine, or the first node of a batch job). With one copy the command is
// returned unchanged, so the provider's process is the pool itself.
func SingleNode(command []string, tasksPerNode, nodesPerBlock int) []string {
	n := max(tasksPerNode, 1) * max(nodesPerBlock, 1)
	if n == 1 {
		return append([]string(nil), command...)
	}
	out := []string{"/bin/bash", "-c", singleNodeScript, "parsl-launcher", strconv.Itoa(n)}
	return append(out, command...)
}
