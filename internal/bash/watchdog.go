package bash

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// watchdogScript is the whole watchdog: it learns the process groups of the
// running commands from its stdin ("+ PGID" when one starts, "- PGID" when
// it is over) and, when stdin ends, kills every group still listed. Its
// stdin is a pipe whose only writer is the Runner's process, so the end of
// stdin is that process's death (kill -9 included) or Runner.Close. It is
// bash, which is there anyway wherever bash apps run, so that it needs no
// binary of ours; the array is indexed (not associative) for the bash 3.2
// of macOS. It ignores the signals a terminal or a group kill of its parent
// would send, since it must outlive its parent to do its work.
const watchdogScript = `trap '' INT TERM HUP QUIT PIPE
g=()
while read -r op pg; do
  case $op in
    +) g[pg]=1 ;;
    -) unset "g[pg]" ;;
  esac
done
for pg in "${!g[@]}"; do kill -KILL -- "-$pg" 2>/dev/null; done
exit 0`

// watchdog is the helper process that kills the commands' process groups
// when the Runner's process dies without being able to do it itself.
type watchdog struct {
	cmd *exec.Cmd
	w   *os.File // the write end of its stdin; ours alone (close-on-exec)
}

func startWatchdog() (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("bash: cannot create the watchdog's pipe: %w", err)
	}
	cmd := exec.Command(bashPath, "-c", watchdogScript)
	cmd.Stdin = r
	// A group of its own and no parent-death signal: it has to survive the
	// Runner's process, and a kill of that process's group (the local
	// provider's Cancel) must not take it along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("bash: cannot start %s (the watchdog that kills commands orphaned by this process): %w", bashPath, err)
	}
	return &watchdog{cmd: cmd, w: w}, nil
}

// watchdogPatience bounds how long a write to the watchdog, or its exit,
// may take: a watchdog that does not read (stopped with SIGSTOP, say) must
// not hold up every bash task; it is replaced.
const watchdogPatience = 5 * time.Second

// tell sends one line; an error means the watchdog is gone or stuck.
func (wd *watchdog) tell(op byte, pgid int) error {
	b := make([]byte, 0, 16)
	b = append(b, op, ' ')
	b = strconv.AppendInt(b, int64(pgid), 10)
	b = append(b, '\n')
	_ = wd.w.SetWriteDeadline(time.Now().Add(watchdogPatience))
	_, err := wd.w.Write(b)
	return err
}

// stop ends the watchdog: at the end of its input it kills the groups
// still listed and exits. One that does not exit within watchdogPatience
// is killed.
func (wd *watchdog) stop() error {
	wd.w.Close()
	t := time.AfterFunc(watchdogPatience, func() { _ = wd.cmd.Process.Kill() })
	err := wd.cmd.Wait()
	t.Stop()
	if err != nil {
		return fmt.Errorf("bash: the watchdog exited badly: %w", err)
	}
	return nil
}
