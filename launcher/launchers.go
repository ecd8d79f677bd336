package launcher

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Simple runs the command once, unchanged, like Parsl's SimpleLauncher: the
// block's own process is the command, whatever the counts say. The MPI
// executor needs it, because its pool starts the MPI ranks itself.
func Simple(command []string, tasksPerNode, nodesPerBlock int) []string {
	return append([]string(nil), command...)
}

// Wrapped puts prefix, shell text such as "singularity exec img.sif" or
// "time", in front of the command, like Parsl's WrappedLauncher. The prefix
// stays shell text (so it may use variables such as $PWD), while the
// command's arguments reach it as "$@" and are never re-split or expanded.
// The counts are ignored: the wrapped command runs once. An empty prefix
// gives Simple.
func Wrapped(prefix string) Launcher {
	prefix = strings.TrimSpace(prefix)
	if prefix == "" {
		return Simple
	}
	script := prefix + ` "$@"`
	return func(command []string, tasksPerNode, nodesPerBlock int) []string {
		out := []string{"/bin/bash", "-c", script, "parsl-wrapped"}
		return append(out, command...)
	}
}

// MpiexecOptions adjusts Mpiexec.
type MpiexecOptions struct {
	// Bind is the option that turns off CPU binding, followed by "none";
	// "--bind-to" (Open MPI, MPICH hydra) by default, "-bind-to" for
	// older hydra. Binding is off because a worker pool is not an MPI rank
	// and pinning it to one core would serialise its workers.
	Bind string
	// Overrides are extra arguments to mpiexec, each one argument.
	Overrides []string
}

// Mpiexec starts tasksPerNode × nodesPerBlock copies of the command with
// mpiexec, like Parsl's MpiExecLauncher. Under PBS the deduplicated
// $PBS_NODEFILE becomes the host file; elsewhere mpiexec places the copies
// by its own defaults.
func Mpiexec(opts MpiexecOptions) Launcher {
	bind := opts.Bind
	if bind == "" {
		bind = "--bind-to"
	}
	return func(command []string, tasksPerNode, nodesPerBlock int) []string {
		n := max(tasksPerNode, 1) * max(nodesPerBlock, 1)
		// The temporary host file is removed on exit, so the shell stays
		// (no exec); the scheduler stops the whole job on cancel anyway.
		script := fmt.Sprintf(`WORKERCOUNT=%d
HOSTS=()
if [ -n "${PBS_NODEFILE:-}" ] && [ -r "$PBS_NODEFILE" ]; then
  HOSTFILE=$(mktemp "${TMPDIR:-/tmp}/parsl-hosts.XXXXXX")
  trap 'rm -f "$HOSTFILE"' EXIT
  sort -u "$PBS_NODEFILE" > "$HOSTFILE"
  HOSTS=(--hostfile "$HOSTFILE")
fi
mpiexec %s none%s -n "$WORKERCOUNT" "${HOSTS[@]}" "$@"`, n, shellQuote(bind), quotedTail(opts.Overrides))
		out := []string{"/bin/bash", "-c", script, "parsl-mpiexec"}
		return append(out, command...)
	}
}

// MpirunOptions adjusts Mpirun.
type MpirunOptions struct {
	// Overrides are extra arguments to mpirun, each one argument.
	Overrides []string
}

// Mpirun starts tasksPerNode × nodesPerBlock copies of the command with
// mpirun -np, like Parsl's MpiRunLauncher. Nothing is computed at run time,
// so no shell is involved and no argument can be mis-quoted.
func Mpirun(opts MpirunOptions) Launcher {
	return func(command []string, tasksPerNode, nodesPerBlock int) []string {
		n := max(tasksPerNode, 1) * max(nodesPerBlock, 1)
		out := append([]string{"mpirun", "-np", strconv.Itoa(n)}, opts.Overrides...)
		return append(out, command...)
	}
}

// AprunOptions adjusts Aprun.
type AprunOptions struct {
	// Overrides are extra arguments to aprun, each one argument.
	Overrides []string
}

// Aprun starts the copies with Cray's aprun (-n total, -N per node), like
// Parsl's AprunLauncher. Parsl backgrounds aprun and waits; running it as
// the block's process is equivalent and passes signals straight to it.
func Aprun(opts AprunOptions) Launcher {
	return func(command []string, tasksPerNode, nodesPerBlock int) []string {
		perNode := max(tasksPerNode, 1)
		n := perNode * max(nodesPerBlock, 1)
		out := append([]string{"aprun", "-n", strconv.Itoa(n), "-N", strconv.Itoa(perNode)}, opts.Overrides...)
		return append(out, command...)
	}
}

// JsrunOptions adjusts Jsrun.
type JsrunOptions struct {
	// Overrides are extra arguments to jsrun, each one argument.
	Overrides []string
}

// Jsrun starts the copies with IBM LSF's jsrun (-n resource sets in total,
// -r per host), like Parsl's JsrunLauncher.
func Jsrun(opts JsrunOptions) Launcher {
	return func(command []string, tasksPerNode, nodesPerBlock int) []string {
		perNode := max(tasksPerNode, 1)
		n := perNode * max(nodesPerBlock, 1)
		out := append([]string{"jsrun", "-n", strconv.Itoa(n), "-r", strconv.Itoa(perNode)}, opts.Overrides...)
		return append(out, command...)
	}
}

// SrunMPIOptions adjusts SrunMPI.
type SrunMPIOptions struct {
	// Overrides are extra arguments to every srun, each one argument.
	Overrides []string
}

// SrunMPI splits the Slurm allocation into tasksPerNode × nodesPerBlock
// task blocks and starts one srun step per task block, like Parsl's
// SrunMPILauncher: with more task blocks than nodes each step gets an equal
// share of the allocation's cores as MPI tasks; otherwise each step gets an
// equal share of whole nodes (--exclusive). Like SingleNode, the block fails
// only when every step failed.
func SrunMPI(opts SrunMPIOptions) Launcher {
	return func(command []string, tasksPerNode, nodesPerBlock int) []string {
		blocks := max(tasksPerNode, 1) * max(nodesPerBlock, 1)
		// Slurm's variables are read at run time because they say what was
		// granted; the defaults keep the arithmetic from dividing by zero
		// outside Slurm. Parsl's "seq ...):" loop typo is not reproduced.
		script := fmt.Sprintf(`TASKBLOCKS=%d
CORES=${SLURM_CPUS_ON_NODE:-1}
NODES=${SLURM_JOB_NUM_NODES:-%d}
if [ "$TASKBLOCKS" -gt "$NODES" ]; then
  PER=$((NODES * CORES / TASKBLOCKS)); [ "$PER" -ge 1 ] || PER=1
  STEP=(--ntasks "$PER")
else
  PER=$((NODES / TASKBLOCKS))
  STEP=(--exclusive --nodes "$PER")
fi
pids=()
for ((i = 0; i < TASKBLOCKS; i++)); do
  srun "${STEP[@]}" -l%s -- "$@" & pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -lt "$TASKBLOCKS" ]`, blocks, max(nodesPerBlock, 1), quotedTail(opts.Overrides))
		out := []string{"/bin/bash", "-c", script, "parsl-srun-mpi"}
		return append(out, command...)
	}
}

// GnuParallelOptions adjusts GnuParallel.
type GnuParallelOptions struct {
	// JobLog, when set, is passed as parallel's --joblog file.
	JobLog string
	// Overrides are extra arguments to parallel, each one argument.
	Overrides []string
}

// GnuParallel starts tasksPerNode × nodesPerBlock copies with GNU parallel,
// like Parsl's GnuParallelLauncher: under PBS it spreads them over the
// deduplicated $PBS_NODEFILE by ssh, tasksPerNode per host; elsewhere it
// runs them all here. parallel gets each copy as a command line, so the
// command is quoted here once, argument by argument, for the remote shell.
func GnuParallel(opts GnuParallelOptions) Launcher {
	return func(command []string, tasksPerNode, nodesPerBlock int) []string {
		perNode := max(tasksPerNode, 1)
		n := perNode * max(nodesPerBlock, 1)
		joblog := ""
		if opts.JobLog != "" {
			joblog = " --joblog " + shellQuote(opts.JobLog)
		}
		script := fmt.Sprintf(`WORKERCOUNT=%d
CMD=%s
HOSTS=()
if [ -n "${PBS_NODEFILE:-}" ] && [ -r "$PBS_NODEFILE" ]; then
  HOSTFILE=$(mktemp "${TMPDIR:-/tmp}/parsl-hosts.XXXXXX")
  trap 'rm -f "$HOSTFILE"' EXIT
  sort -u "$PBS_NODEFILE" > "$HOSTFILE"
  HOSTS=(--sshloginfile "$HOSTFILE")
fi
for ((i = 0; i < WORKERCOUNT; i++)); do printf '%%s\n' "$CMD"; done |
  parallel --jobs %d "${HOSTS[@]}"%s%s`, n, shellQuote(shellJoin(command)), perNode, joblog, quotedTail(opts.Overrides))
		return []string{"/bin/bash", "-c", script, "parsl-gnu-parallel"}
	}
}

// safeWord matches arguments that need no quotes in bash.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s as one bash word: as is when it has only safe
// characters, otherwise in single quotes, which expand nothing.
func shellQuote(s string) string {
	if safeWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellJoin quotes each argument and joins them into one command line.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// quotedTail is the quoted arguments with a leading space, or "" for none,
// for splicing into a script after a fixed word.
func quotedTail(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return " " + shellJoin(args)
}
