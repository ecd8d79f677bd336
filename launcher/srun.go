package launcher

import "strconv"

// srunScript starts the command with srun on every node of the Slurm
// allocation. It runs inside the batch script, so it can read what Slurm
// granted: each task gets the node's CPUs divided by the tasks on the node,
// because srun (since Slurm 22.05) no longer inherits --cpus-per-task from
// sbatch, and a step with the default of one CPU per task would pin a whole
// worker pool to one core on clusters that bind tasks to cores.
// --overlap lets the step share CPUs with other steps (for example srun
// calls made by bash apps inside the block), and --kill-on-bad-exit=0 keeps
// one crashed pool from ending its siblings, as with SingleNode.
const srunScript = `NTASKS=$1; PERNODE=$2; shift 2
CPUS=
if [ -n "${SLURM_CPUS_ON_NODE:-}" ] && [ "$SLURM_CPUS_ON_NODE" -ge "$PERNODE" ]; then
  CPUS=--cpus-per-task=$((SLURM_CPUS_ON_NODE / PERNODE))
fi
exec srun --ntasks="$NTASKS" --ntasks-per-node="$PERNODE" $CPUS --overlap --kill-on-bad-exit=0 -- "$@"`

// Srun runs tasksPerNode copies of command on each of the nodesPerBlock
// nodes of a Slurm allocation through srun, like Parsl's SrunLauncher. It
// must run inside a Slurm job (the Slurm provider's batch script); srun
// then places the copies on the allocated nodes and forwards signals, so
// scancel stops every copy.
func Srun(command []string, tasksPerNode, nodesPerBlock int) []string {
	perNode := max(tasksPerNode, 1)
	n := perNode * max(nodesPerBlock, 1)
	out := []string{"/bin/bash", "-c", srunScript, "parsl-srun", strconv.Itoa(n), strconv.Itoa(perNode)}
	return append(out, command...)
}
