package launcher_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parsl-go/parsl/launcher"
)

func TestSrunGolden(t *testing.T) {
	got := strings.Join(launcher.Srun([]string{"/bin/pool", "--block", "3"}, 2, 3), "\n---\n") + "\n"
	golden := filepath.Join("testdata", "srun.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading %s (run go test -update to create it): %v", golden, err)
	}
	if got != string(want) {
		t.Fatalf("Srun output changed:\n%s\nwant:\n%s", got, want)
	}
}

// TestSrunArguments runs the launcher with a fake srun first in PATH, which
// prints its arguments, to check what a real srun would be given: the
// counts, the CPUs per task derived from SLURM_CPUS_ON_NODE, and the
// command with awkward arguments intact.
func TestSrunArguments(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	dir := t.TempDir()
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(dir, "srun"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, cpus string
		perNode    int
		want       string
	}{
		{"cpus known", "8", 2, "--ntasks=6\n--ntasks-per-node=2\n--cpus-per-task=4\n"},
		{"cpus unknown", "", 2, "--ntasks=6\n--ntasks-per-node=2\n"},
		{"fewer cpus than tasks", "1", 2, "--ntasks=6\n--ntasks-per-node=2\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			argv := launcher.Srun([]string{"/bin/pool", "a b", "$HOME", "it's"}, c.perNode, 3)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "SLURM_CPUS_ON_NODE="+c.cpus)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("launcher failed: %v\n%s", err, out)
			}
			want := c.want + "--overlap\n--kill-on-bad-exit=0\n--\n/bin/pool\na b\n$HOME\nit's\n"
			if string(out) != want {
				t.Fatalf("srun got:\n%s\nwant:\n%s", out, want)
			}
		})
	}
}
