package htex

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

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
	marks := [][]byte{[]byte(wire.PoolConfigEnv + "=" + cfg + "\x00"), []byte(wire.BlockIDEnv + "=" + id + "\x00")}
	ctx, cancel := context.WithTimeout(ctx, blockProcsPatience)
	defer cancel()
	for {
		pid := blockProc(marks)
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

// blockProc returns a live process whose environment has every mark, or 0.
func blockProc(marks [][]byte) int {
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
		env, err := os.ReadFile("/proc/" + n + "/environ")
		if err != nil || len(env) == 0 {
			continue // gone, a zombie, or not ours to read
		}
		// environ has no NUL before its first entry.
		env = append([]byte{0}, env...)
		if len(env) > 0 && env[len(env)-1] != 0 {
			env = append(env, 0)
		}
		all := true
		for _, m := range marks {
			if !bytes.Contains(env, append([]byte{0}, m...)) {
				all = false
				break
			}
		}
		if all && !zombie(n) {
			return pid
		}
	}
	return 0
}

// zombie reports whether process pid (as a /proc name) has exited and
// waits to be reaped: it runs nothing more.
func zombie(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true // gone
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
