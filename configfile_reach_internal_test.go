package parsl

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	yast "github.com/goccy/go-yaml/ast"
	yparser "github.com/goccy/go-yaml/parser"

	"github.com/parsl-go/parsl/executor/htex"
	"github.com/parsl-go/parsl/launcher"
)

// firstExecutor parses text, a configuration file, and returns a decoder
// for it and the mapping of its executors[0].
func firstExecutor(t *testing.T, text string) (*decoder, *yast.MappingNode) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := yparser.ParseBytes([]byte(text), 0)
	if err != nil {
		t.Fatal(err)
	}
	body := f.Docs[0].Body.(*yast.MappingNode)
	ex := lookup(body, "executors").Value.(*yast.SequenceNode).Values[0].(*yast.MappingNode)
	return &decoder{file: path}, ex
}

// sameLauncher reports whether two launchers wrap a command alike, for
// the counts a block of 3 nodes with 2 pools each gives.
func sameLauncher(a, b launcher.Launcher) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	cmd := []string{"/bin/pool", "--flag"}
	return slices.Equal(a(cmd, 2, 3), b(cmd, 2, 3))
}

// TestConfigFileHtexReach checks that each htex key added for issue 18
// reaches its field of htex.Options.
func TestConfigFileHtexReach(t *testing.T) {
	for _, tt := range []struct {
		name, keys string
		ok         func(o htex.Options) bool
	}{
		{"interchange process", "interchange: process", func(o htex.Options) bool { return o.Interchange == htex.InterchangeProcess }},
		{"interchange in_process", "interchange: in_process", func(o htex.Options) bool { return o.Interchange == htex.InterchangeInProcess }},
		{"interchange remote", "interchange: login1:54000\n    interchange_dir: /shared/ix", func(o htex.Options) bool {
			return o.Interchange == "login1:54000" && o.InterchangeDir == "/shared/ix"
		}},
		{"worker_env list", "worker_env: [OMP_NUM_THREADS=1, \"GREETING=a b=c\"]", func(o htex.Options) bool {
			return slices.Equal(o.WorkerEnv, []string{"OMP_NUM_THREADS=1", "GREETING=a b=c"})
		}},
		{"worker_env mapping", "worker_env:\n      OMP_NUM_THREADS: 1\n      PATH: /opt/bin:/usr/bin\n      DEBUG: true\n      EMPTY:\n      ZIP: \"007\"", func(o htex.Options) bool {
			return slices.Equal(o.WorkerEnv, []string{"OMP_NUM_THREADS=1", "PATH=/opt/bin:/usr/bin", "DEBUG=true", "EMPTY=", "ZIP=007"})
		}},
		{"pool_command list", "pool_command: [/opt/parsl/bin/parsl, pool, --log, \"a b\"]", func(o htex.Options) bool {
			return slices.Equal(o.PoolCommand, []string{"/opt/parsl/bin/parsl", "pool", "--log", "a b"})
		}},
		{"pool_command string", "pool_command: /opt/parsl/bin/parsl pool", func(o htex.Options) bool {
			return slices.Equal(o.PoolCommand, []string{"/opt/parsl/bin/parsl", "pool"})
		}},
		{"launcher name", "launcher: simple", func(o htex.Options) bool { return sameLauncher(o.Launcher, launcher.Simple) }},
		{"launcher wrapped", "launcher: {kind: wrapped, prepend: singularity exec img.sif}", func(o htex.Options) bool {
			return sameLauncher(o.Launcher, launcher.Wrapped("singularity exec img.sif"))
		}},
		{"no launcher", "label: x", func(o htex.Options) bool { return o.Launcher == nil }},
		{"max_frame", "max_frame: 1048576", func(o htex.Options) bool { return o.MaxFrame == 1<<20 }},
		{"nodes_per_block", "nodes_per_block: 4", func(o htex.Options) bool { return o.NodesPerBlock == 4 }},
		{"refused_limit", "refused_limit: 7", func(o htex.Options) bool { return o.RefusedLimit == 7 }},
		{"failure_threshold", "failure_threshold: 5", func(o htex.Options) bool { return o.FailureThreshold == 5 }},
		{"parallelism 0 is Parsl's 0", "parallelism: 0", func(o htex.Options) bool { return o.Parallelism < 0 }},
		{"parallelism 0.5", "parallelism: 0.5", func(o htex.Options) bool { return o.Parallelism == 0.5 }},
		{"parallelism omitted", "label: x", func(o htex.Options) bool { return o.Parallelism == 0 }},
		{"blocks 0 starts none", "blocks: 0", func(o htex.Options) bool { return o.Blocks < 0 }},
		{"max_blocks 0 starts none", "max_blocks: 0", func(o htex.Options) bool { return o.Blocks < 0 && o.MaxBlocks == 0 }},
		{"blocks 2 wins over zero bounds", "blocks: 2\n    max_blocks: 0", func(o htex.Options) bool { return o.Blocks == 2 }},
		{"blocks omitted", "label: x", func(o htex.Options) bool { return o.Blocks == 0 }},
		{"max_blocks 3", "max_blocks: 3", func(o htex.Options) bool { return o.Blocks == 0 && o.MaxBlocks == 3 }},
		{"walltime from provider", "provider: {kind: slurm, walltime: 2h}", func(o htex.Options) bool { return o.Walltime == 2*time.Hour }},
		{"resource_interval off", "resource_interval: off", func(o htex.Options) bool { return o.NoResourceMonitoring && o.ResourceInterval == 0 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, m := firstExecutor(t, "executors:\n  - kind: htex\n    "+tt.keys+"\n")
			o, err := htexOptions(d, m, "executors[0]")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.ok(o) {
				t.Errorf("%s: options not as written: %+v", tt.keys, o)
			}
		})
	}
}

// TestConfigFileLaunchers checks every launcher kind, by name and with
// its options, against the launcher package's own.
func TestConfigFileLaunchers(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  launcher.Launcher
	}{
		{"single_node", launcher.SingleNode},
		{"{kind: single_node}", launcher.SingleNode},
		{"simple", launcher.Simple},
		{"srun", launcher.Srun},
		{"srun_mpi", launcher.SrunMPI(launcher.SrunMPIOptions{})},
		{"{kind: srun_mpi, overrides: [--mpi=pmix]}", launcher.SrunMPI(launcher.SrunMPIOptions{Overrides: []string{"--mpi=pmix"}})},
		{"mpiexec", launcher.Mpiexec(launcher.MpiexecOptions{})},
		{"{kind: mpiexec, bind_cmd: -bind-to, overrides: -ppn 1}", launcher.Mpiexec(launcher.MpiexecOptions{Bind: "-bind-to", Overrides: []string{"-ppn", "1"}})},
		{"{kind: mpirun, overrides: [--oversubscribe]}", launcher.Mpirun(launcher.MpirunOptions{Overrides: []string{"--oversubscribe"}})},
		{"{kind: aprun, overrides: [-cc, depth]}", launcher.Aprun(launcher.AprunOptions{Overrides: []string{"-cc", "depth"}})},
		{"{kind: jsrun, overrides: [-a1, -c7]}", launcher.Jsrun(launcher.JsrunOptions{Overrides: []string{"-a1", "-c7"}})},
		{"{kind: gnu_parallel, job_log: jobs.log, overrides: [--delay, \"1\"]}",
			launcher.GnuParallel(launcher.GnuParallelOptions{JobLog: "jobs.log", Overrides: []string{"--delay", "1"}})},
		{"{kind: wrapped, prepend: time}", launcher.Wrapped("time")},
	} {
		t.Run(tt.value, func(t *testing.T) {
			d, m := firstExecutor(t, "executors:\n  - kind: htex\n    provider:\n      kind: pbs\n      launcher: "+tt.value+"\n")
			pm := lookup(m, "provider").Value.(*yast.MappingNode)
			l, err := d.launcher(pm, "executors[0].provider")
			if err != nil {
				t.Fatal(err)
			}
			if !sameLauncher(l, tt.want) {
				t.Errorf("launcher %s wraps a command as %q, want %q", tt.value, l([]string{"/bin/pool"}, 2, 3), tt.want([]string{"/bin/pool"}, 2, 3))
			}
		})
	}
}

// TestConfigFileLauncherRegistry checks that a file can name every
// launcher of the launcher package: its registry (launcher.ByName) lists
// them in the error for an unknown name.
func TestConfigFileLauncherRegistry(t *testing.T) {
	_, err := launcher.ByName("no-such-launcher")
	if err == nil {
		t.Fatal("launcher.ByName accepted an unknown name")
	}
	_, list, ok := strings.Cut(err.Error(), "known launchers: ")
	if !ok {
		t.Fatalf("launcher.ByName's error %q does not list the known launchers", err)
	}
	want := append(strings.Split(list, ", "), "wrapped") // wrapped needs a prefix, so ByName leaves it out
	var got []string
	for k := range launcherKinds {
		got = append(got, strings.ReplaceAll(k, "_", ""))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("a file can name launchers %v, the launcher package has %v", got, want)
	}
}

// kindKeys are the keys of each kind's mapping, for
// TestLoadConfigFileDocListsKeys; configfile_kubernetes_internal_test.go
// adds kubernetes in builds that have it.
var kindKeys = map[string]any{
	"threads": threadsFile{}, "htex": htexFile{},
	"local": localFile{}, "slurm": slurmFile{}, "pbs": pbsFile{}, "lsf": lsfFile{}, "condor": condorFile{}, "gridengine": gridEngineFile{},
	"single_node": launcherKindFile{}, "simple": launcherKindFile{}, "srun": launcherKindFile{},
	"srun_mpi": overridesFile{}, "mpirun": overridesFile{}, "aprun": overridesFile{}, "jsrun": overridesFile{},
	"mpiexec": mpiexecFile{}, "gnu_parallel": gnuParallelFile{}, "wrapped": wrappedFile{},
}

// TestLoadConfigFileDocListsKeys checks that the doc comment of
// LoadConfigFile lists every key of every kind, and no key a kind does
// not have, so that it cannot go stale when a key is added.
func TestLoadConfigFileDocListsKeys(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "configfile.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, decl := range f.Decls {
		if fd, ok := decl.(*ast.FuncDecl); ok && fd.Name.Name == "LoadConfigFile" {
			doc = fd.Doc.Text()
		}
	}
	// List items "  - kinds: keys", continued on more indented lines.
	items := map[string][]string{}
	paren := regexp.MustCompile(`\([^)]*\)`)
	word := regexp.MustCompile(`^[a-z][a-z_]*$`)
	var cur []string
	for _, line := range strings.Split(doc, "\n") {
		if rest, ok := strings.CutPrefix(line, "  - "); ok {
			kinds, keys, ok := strings.Cut(rest, ":")
			if !ok {
				cur = nil
				continue
			}
			cur = strings.Split(strings.TrimSpace(paren.ReplaceAllString(kinds, "")), ", ")
			for _, k := range cur {
				items[k] = nil
			}
			line = keys
		} else if !strings.HasPrefix(line, "    ") {
			cur = nil
			continue
		}
		for _, w := range strings.Split(paren.ReplaceAllString(line, ""), ",") {
			if w = strings.TrimSpace(w); word.MatchString(w) {
				for _, k := range cur {
					items[k] = append(items[k], w)
				}
			}
		}
	}
	kinds := slices.Concat(slices.Collect(maps.Keys(executorKinds)), slices.Collect(maps.Keys(providerKinds)), slices.Collect(maps.Keys(launcherKinds)))
	for _, kind := range kinds {
		st, ok := kindKeys[kind]
		if !ok {
			t.Errorf("kind %q is not in kindKeys of this test", kind)
			continue
		}
		listed, ok := items[kind]
		if !ok {
			t.Errorf("the doc of LoadConfigFile has no item for kind %q", kind)
			continue
		}
		want := slices.DeleteFunc(yamlKeys(st), func(k string) bool { return k == "kind" })
		slices.Sort(listed)
		if !slices.Equal(listed, want) {
			t.Errorf("the doc of LoadConfigFile lists for %s:\n\t%v\nthe file accepts:\n\t%v", kind, listed, want)
		}
	}
}
