package slurm

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parsl-go/parsl/launcher"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestScriptGolden(t *testing.T) {
	no := false
	o := New(Options{
		Partition: "debug", Account: "proj", QOS: "high", Constraint: "haswell", Clusters: "c1",
		NodesPerBlock: 2, CoresPerNode: 8, MemPerNodeMB: 3072, Walltime: 90 * time.Minute,
		Exclusive:        &no,
		SchedulerOptions: []string{"--gres=gpu:1", "#SBATCH --mail-type=NONE", ""},
		WorkerInit:       []string{"module load go", "source 'my env/bin/activate'"},
	}).opts
	text, err := renderScript(scriptParams{
		JobName: "parsl.7", Stdout: "/runs/000/htex/block-7.out", Stderr: "/runs/my dir/block-7.err", Opts: o,
		Env:     []string{"PARSL_ROLE=pool", "ODD=it's $HOME"},
		Command: launcher.Srun([]string{"/bin/pool", "--x"}, 1, 2),
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "script.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading %s (run go test -update to create it): %v", golden, err)
	}
	if text != string(want) {
		t.Fatalf("batch script changed:\n%s\nwant:\n%s", text, want)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		f := filepath.Join(t.TempDir(), "s.sh")
		_ = os.WriteFile(f, []byte(text), 0o644)
		if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
			t.Fatalf("bash -n: %v\n%s", err, out)
		}
	}
}

func TestScriptDefaults(t *testing.T) {
	text, err := renderScript(scriptParams{JobName: "parsl.0", Stdout: "/o", Stderr: "/e", Opts: New(Options{}).opts, Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --exclusive\n", "#SBATCH --nodes=1\n", "#SBATCH --time=01:00:00\n", "\ntrue\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("default script lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "--partition") {
		t.Errorf("no partition was set:\n%s", text)
	}
}

func TestScriptRefusesInjection(t *testing.T) {
	bad := []scriptParams{
		{JobName: "j", Stdout: "/o\n#SBATCH --uid=0", Stderr: "/e", Command: []string{"true"}},
		{JobName: "j", Stdout: "/o", Stderr: `/e"`, Command: []string{"true"}},
		{JobName: "j", Stdout: "/o", Stderr: "/e", Env: []string{"A B=1"}, Command: []string{"true"}},
		{JobName: "j", Stdout: "/o", Stderr: "/e", Env: []string{"NOEQUALS"}, Command: []string{"true"}},
		{JobName: "j", Stdout: "/o", Stderr: "/e", Opts: Options{SchedulerOptions: []string{"--a\n--b"}}, Command: []string{"true"}},
	}
	for i, p := range bad {
		if p.Opts.NodesPerBlock == 0 {
			p.Opts = New(p.Opts).opts
		}
		if _, err := renderScript(p); err == nil {
			t.Errorf("case %d: expected an error", i)
		}
	}
}
