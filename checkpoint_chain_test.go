package parsl_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/parsl-go/parsl"
	"github.com/parsl-go/parsl/memo"
)

// TestCkptChainStaysLinear reruns a workflow four times, each run adding a
// few new tasks to the ones before, and checks that a run's journal holds
// only the results it computed (not the ones it reused), while the last
// run, given only the last checkpoint or all of them, still loads every
// distinct result exactly once and runs nothing again.
func TestCkptChainStaysLinear(t *testing.T) {
	t.Parallel()
	finders := map[string]func(string) ([]string, error){
		"all":  parsl.AllCheckpoints,
		"last": parsl.LastCheckpoint,
	}
	loaded := regexp.MustCompile(`loaded checkpoints.* records=(\d+)`)
	for name, find := range finders {
		for _, mode := range []parsl.CheckpointMode{parsl.CheckpointTaskExit, parsl.CheckpointDFKExit} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				tag := t.Name()
				base := t.TempDir()
				// Tasks per run: run k submits 0..total[k]-1.
				total := []int{100, 110, 115, 115}
				prev := 0
				for run, n := range total {
					var files []string
					if run > 0 {
						var err error
						if files, err = find(base); err != nil || len(files) == 0 {
							t.Fatalf("run %d: %s finder = %v, %v", run+1, name, files, err)
						}
					}
					before := ckptCount("struct", tag)
					dir := ckptRun(t, parsl.Config{RunDir: base, CheckpointMode: mode, CheckpointFiles: files}, func(dfk *parsl.DFK) {
						for x := range n {
							f := ckptStruct.Submit(dfk, parsl.Val(tag), parsl.Val(x))
							memoGet(t, f)
							if x < prev && f.State() != parsl.StateMemoDone {
								t.Errorf("run %d: task %d state %v; want memo_done", run+1, x, f.State())
							}
						}
					})
					if ran := ckptCount("struct", tag) - before; ran != int64(n-prev) {
						t.Errorf("run %d: %d tasks ran, want the %d new ones", run+1, ran, n-prev)
					}
					log := ckptLog(t, dir)
					if run > 0 {
						m := loaded.FindStringSubmatch(log)
						if m == nil {
							t.Fatalf("run %d: no loaded checkpoints line in the log", run+1)
						}
						if got, _ := strconv.Atoi(m[1]); got != prev {
							t.Errorf("run %d: loaded %d records, want the %d distinct results", run+1, got, prev)
						}
					}
					st, err := os.Stat(memo.JournalPath(dir))
					if n == prev {
						if err == nil {
							t.Errorf("run %d computed nothing new but wrote a %d byte journal", run+1, st.Size())
						}
					} else {
						if err != nil {
							t.Fatalf("run %d: %v", run+1, err)
						}
						if got := len(ckptRecords(t, dir)); got != n-prev {
							t.Errorf("run %d: journal holds %d results, want only the %d new ones", run+1, got, n-prev)
						}
						t.Logf("run %d: %d new results, journal %d bytes", run+1, n-prev, st.Size())
					}
					if mode == parsl.CheckpointTaskExit && regexp.MustCompile(`no tasks checkpointed in this pass`).MatchString(log) && n > prev {
						t.Errorf("run %d checkpointed %d results as tasks ended, but the log says no tasks checkpointed", run+1, n-prev)
					}
					prev = n
				}
			})
		}
	}
}
