package htex

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/parsl-go/parsl/internal/procstat"
	"github.com/parsl-go/parsl/internal/wire"
)

// blockProcsPatience bounds waitBlockProcs: the processes it waits for
// were sent SIGKILL already, so only a process the kernel cannot kill
// (stuck in uninterruptible I/O) takes longer.
const blockProcsPatience = 10 * time.Second

// waitBlockProcs waits until no live process on this machine carries the
// environment of block id of this executor (its pool configuration file
// and block ID), or fails after blockProcsPatience. A cancelled local
// block's pool is reaped when Cancel returns, but its bash tasks run in
// process groups of their own: the shell dies with the pool (a
// parent-death signal) and the rest of the group is killed by the
// runner's watchdog, which notices the pool's death a moment later and
// itself carries the environment. Processes of other users that /proc
// does not show are not seen; a block on another machine has none here.
func waitBlockProcs(ctx context.Context, cfg, id string) error {
	if cfg == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, blockProcsPatience)
	defer cancel()
	r := procstat.New("")
	for {
		pid := blockProc(r, cfg, id)
		if pid == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d of block %s still runs after its job was cancelled: %w", pid, id, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// blockProc returns a live process that started with block id's pool
// configuration and block ID in its environment, or 0.
func blockProc(r *procstat.Reader, cfg, id string) int {
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	self := os.Getpid()
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		env, err := r.Environ(pid)
		if err != nil || len(env) == 0 {
			continue // gone, a zombie, or not ours to read
		}
		if v, ok := procstat.LookupEnv(env, wire.PoolConfigEnv); !ok || v != cfg {
			continue
		}
		if v, ok := procstat.LookupEnv(env, wire.BlockIDEnv); !ok || v != id {
			continue
		}
		if st, err := r.State(pid); err == nil && st != 'Z' {
			return pid
		}
	}
	return 0
}
