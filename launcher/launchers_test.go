package launcher_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parsl-go/parsl/launcher"
)

// awkward is a command whose arguments break naive quoting.
var awkward = []string{"/bin/pool", "a b", "$HOME", "it's", `"q"`, "*", ""}

// launchers is every launcher under its golden file name.
var launchers = []struct {
	name string
	l    launcher.Launcher
}{
	{"simple", launcher.Simple},
	{"wrapped", launcher.Wrapped("time -p")},
	{"mpiexec", launcher.Mpiexec(launcher.MpiexecOptions{Overrides: []string{"--env", "A=b c"}})},
	{"mpirun", launcher.Mpirun(launcher.MpirunOptions{Overrides: []string{"--oversubscribe"}})},
	{"aprun", launcher.Aprun(launcher.AprunOptions{Overrides: []string{"-cc", "none"}})},
	{"jsrun", launcher.Jsrun(launcher.JsrunOptions{Overrides: []string{"-a", "1"}})},
	{"srunmpi", launcher.SrunMPI(launcher.SrunMPIOptions{Overrides: []string{"--mpi=pmix", "x'y"}})},
	{"gnuparallel", launcher.GnuParallel(launcher.GnuParallelOptions{JobLog: "job log", Overrides: []string{"--nice", "5"}})},
}

func TestLaunchersGolden(t *testing.T) {
	for _, c := range launchers {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(c.l([]string{"/bin/pool", "--block", "3", "a b"}, 2, 3), "\n---\n") + "\n"
			golden := filepath.Join("testdata", c.name+".golden")
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
				t.Fatalf("%s output changed:\n%s\nwant:\n%s", c.name, got, want)
			}
		})
	}
}

// TestLaunchersScriptSyntax checks every generated bash script, including
// those of SingleNode and Srun, with bash -n.
func TestLaunchersScriptSyntax(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	all := append(launchers[:len(launchers):len(launchers)],
		struct {
			name string
			l    launcher.Launcher
		}{"singlenode", launcher.SingleNode},
		struct {
			name string
			l    launcher.Launcher
		}{"srun", launcher.Srun})
	for _, c := range all {
		for _, counts := range [][2]int{{1, 1}, {4, 1}, {2, 3}} {
			argv := c.l(awkward, counts[0], counts[1])
			if len(argv) < 3 || argv[0] != "/bin/bash" || argv[1] != "-c" {
				continue // not a script: argv is run directly
			}
			if out, err := exec.Command(bash, "-n", "-c", argv[2]).CombinedOutput(); err != nil {
				t.Errorf("%s %v: bash -n: %v\n%s\n%s", c.name, counts, err, out, argv[2])
			}
		}
	}
}

func TestSimpleAndWrapped(t *testing.T) {
	got := launcher.Simple(awkward, 4, 2)
	if strings.Join(got, "\x00") != strings.Join(awkward, "\x00") {
		t.Fatalf("Simple = %q", got)
	}
	got[0] = "x"
	if awkward[0] != "/bin/pool" {
		t.Fatal("Simple must not alias its input")
	}
	if got := launcher.Wrapped("  ")(awkward, 1, 1); strings.Join(got, "\x00") != strings.Join(awkward, "\x00") {
		t.Fatalf("Wrapped(\"\") = %q, want the command", got)
	}
}

// TestLaunchersArguments runs each launcher with fakes of mpiexec, mpirun,
// aprun, jsrun, srun, parallel (and a prefix) first in PATH that print their
// arguments, to check what the real tools would be given and that the
// command's awkward arguments arrive intact.
func TestLaunchersArguments(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	dir := t.TempDir()
	// Each fake writes its line at once, as concurrent srun steps share
	// the output.
	fake := "#!/bin/bash\nl=${0##*/}; for a in \"$@\"; do l+=\" [$a]\"; done; printf '%s\\n' \"$l\"\n"
	for _, n := range []string{"mpiexec", "mpirun", "aprun", "jsrun", "srun", "wrapper"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The fake parallel runs each input line with sh, as parallel does.
	par := "#!/bin/sh\necho \"parallel $*\"; while IFS= read -r line; do sh -c \"$line\"; done\n"
	if err := os.WriteFile(filepath.Join(dir, "parallel"), []byte(par), 0o755); err != nil {
		t.Fatal(err)
	}
	nodefile := filepath.Join(dir, "nodes")
	if err := os.WriteFile(nodefile, []byte("n1\nn1\nn2\nn2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := []string{"printf", "<%s>", "a b", "$HOME", "it's", ""}
	tail := " [printf] [<%s>] [a b] [$HOME] [it's] []"
	cases := []struct {
		name string
		l    launcher.Launcher
		env  []string
		want string
	}{
		{"wrapped", launcher.Wrapped("wrapper --x"), nil, "wrapper [--x]" + tail + "\n"},
		{"mpiexec", launcher.Mpiexec(launcher.MpiexecOptions{Overrides: []string{"-genv", "A B"}}), nil,
			"mpiexec [--bind-to] [none] [-genv] [A B] [-n] [6]" + tail + "\n"},
		{"mpiexec pbs", launcher.Mpiexec(launcher.MpiexecOptions{Bind: "-bind-to"}), []string{"PBS_NODEFILE=" + nodefile},
			"mpiexec [-bind-to] [none] [-n] [6] [--hostfile] [HOSTFILE]" + tail + "\n"},
		{"srunmpi more blocks than nodes", launcher.SrunMPI(launcher.SrunMPIOptions{}), []string{"SLURM_CPUS_ON_NODE=12", "SLURM_JOB_NUM_NODES=3"},
			strings.Repeat("srun [--ntasks] [6] [-l] [--]"+tail+"\n", 6)},
		{"srunmpi whole nodes", launcher.SrunMPI(launcher.SrunMPIOptions{Overrides: []string{"--mpi=pmix"}}), []string{"SLURM_CPUS_ON_NODE=12", "SLURM_JOB_NUM_NODES=12"},
			strings.Repeat("srun [--exclusive] [--nodes] [2] [-l] [--mpi=pmix] [--]"+tail+"\n", 6)},
		{"gnuparallel", launcher.GnuParallel(launcher.GnuParallelOptions{}), nil,
			"parallel --jobs 2\n" + strings.Repeat("<a b><$HOME><it's><>", 6)},
		{"gnuparallel pbs", launcher.GnuParallel(launcher.GnuParallelOptions{JobLog: "l og"}), []string{"PBS_NODEFILE=" + nodefile},
			"parallel --jobs 2 --sshloginfile HOSTFILE --joblog l og\n" + strings.Repeat("<a b><$HOME><it's><>", 6)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			argv := c.l(cmd, 2, 3)
			if argv[0] != "/bin/bash" {
				t.Fatalf("expected a script, got %q", argv)
			}
			run := exec.Command(argv[0], argv[1:]...)
			run.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "PBS_NODEFILE=", "SLURM_CPUS_ON_NODE=", "SLURM_JOB_NUM_NODES=", "TMPDIR="+dir)
			run.Env = append(run.Env, c.env...)
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("launcher failed: %v\n%s", err, out)
			}
			// The host file's random name is replaced by a fixed word.
			got := hostfileRE(dir).ReplaceAllString(string(out), "HOSTFILE")
			if got != c.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "parsl-hosts.*")); len(left) != 0 {
		t.Errorf("host files left behind: %v", left)
	}
}

// TestDirectLaunchers checks the launchers that need no shell.
func TestDirectLaunchers(t *testing.T) {
	cases := []struct {
		name string
		l    launcher.Launcher
		want []string
	}{
		{"mpirun", launcher.Mpirun(launcher.MpirunOptions{Overrides: []string{"--map-by", "node"}}), []string{"mpirun", "-np", "6", "--map-by", "node"}},
		{"aprun", launcher.Aprun(launcher.AprunOptions{}), []string{"aprun", "-n", "6", "-N", "2"}},
		{"jsrun", launcher.Jsrun(launcher.JsrunOptions{Overrides: []string{"-c", "ALL_CPUS"}}), []string{"jsrun", "-n", "6", "-r", "2", "-c", "ALL_CPUS"}},
		{"zero counts", launcher.Aprun(launcher.AprunOptions{}), []string{"aprun", "-n", "1", "-N", "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpn, npb := 2, 3
			if c.name == "zero counts" {
				tpn, npb = 0, 0
			}
			got := c.l(awkward, tpn, npb)
			want := append(c.want, awkward...)
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("got %q\nwant %q", got, want)
			}
		})
	}
}

func TestByName(t *testing.T) {
	for _, name := range []string{"simple", "single_node", "SingleNodeLauncher", "srun", "SrunMPILauncher", "srun-mpi",
		"MpiExecLauncher", "mpirun", "aprun", "jsrun", "GnuParallelLauncher", "gnu_parallel"} {
		if l, err := launcher.ByName(name); err != nil || l == nil {
			t.Errorf("ByName(%q) = %v, %v", name, l, err)
		}
	}
	_, err := launcher.ByName("torque")
	if err == nil || !strings.Contains(err.Error(), "mpiexec") || !strings.Contains(err.Error(), "singlenode") {
		t.Fatalf("unknown launcher error should list the known names: %v", err)
	}
	if _, err := launcher.ByName("WrappedLauncher"); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("wrapped needs a prefix: %v", err)
	}
}

func hostfileRE(dir string) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(dir) + `/parsl-hosts\.[A-Za-z0-9]+`)
}
