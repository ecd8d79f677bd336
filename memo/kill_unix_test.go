//go:build unix

package memo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const childEnv = "MEMO_TEST_APPEND_CHILD"

// TestAppendChild is the process that TestKillDuringAppend kills; it only
// runs when re-executed with childEnv set.
func TestAppendChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper process for TestKillDuringAppend")
	}
	j, err := OpenJournal(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	big := strings.Repeat("y", 256<<10) // large writes are more likely to be cut
	for i := 0; ; i++ {
		rs := []Record{testRecord(t, i, i)}
		if i%4 == 3 {
			rs = append(rs, testRecord(t, -i, big))
		}
		if err := j.Append(rs...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
}

func TestKillDuringAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), Dir, FileName)
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAppendChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child is appending, then let it run a while.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if st, err := os.Stat(path); err == nil && st.Size() > int64(len(magic)) {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child never appended: %s", stderr.String())
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child did not die by SIGKILL: %v: %s", err, stderr.String())
		}
		var w warnings
		recs, err := Load(path, w.add)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			t.Fatal("no records loaded")
		}
		t.Logf("round %d: %d records, warnings %q", round, len(recs), w.msgs)
		if round < 2 && len(w.msgs) > 0 {
			// A torn tail would hide the next round's records; start over.
			os.Remove(path)
		}
	}
}
