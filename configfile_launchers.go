package parsl

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/parsl-go/parsl/launcher"
)

// A launcherBuilder decodes a launcher's options from its mapping (nil
// when the file names the launcher by a bare string) and returns it.
type launcherBuilder func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error)

// launcherKinds are the launchers a launcher: key can name, every one of
// the launcher package: by name alone (launcher: srun) or, for the
// options Parsl's launcher takes, as a mapping
// (launcher: {kind: mpiexec, bind_cmd: -bind-to, overrides: [-ppn, "1"]}).
var launcherKinds = map[string]launcherBuilder{
	"single_node": plainLauncher(launcher.SingleNode),
	"simple":      plainLauncher(launcher.Simple),
	"srun":        plainLauncher(launcher.Srun),
	"srun_mpi": func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		o, err := decodeOverrides(d, m, path)
		return launcher.SrunMPI(launcher.SrunMPIOptions{Overrides: o}), err
	},
	"mpiexec": func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		var o mpiexecFile
		err := d.decode(m, path, &o)
		return launcher.Mpiexec(launcher.MpiexecOptions{Bind: o.BindCmd, Overrides: o.Overrides}), err
	},
	"mpirun": func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		o, err := decodeOverrides(d, m, path)
		return launcher.Mpirun(launcher.MpirunOptions{Overrides: o}), err
	},
	"aprun": func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		o, err := decodeOverrides(d, m, path)
		return launcher.Aprun(launcher.AprunOptions{Overrides: o}), err
	},
	"jsrun": func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		o, err := decodeOverrides(d, m, path)
		return launcher.Jsrun(launcher.JsrunOptions{Overrides: o}), err
	},
	"gnu_parallel": func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		var o gnuParallelFile
		err := d.decode(m, path, &o)
		return launcher.GnuParallel(launcher.GnuParallelOptions{JobLog: o.JobLog, Overrides: o.Overrides}), err
	},
	"wrapped": func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		var o wrappedFile
		if err := d.decode(m, path, &o); err != nil {
			return nil, err
		}
		if strings.TrimSpace(o.Prepend) == "" {
			// An empty prefix would silently be the simple launcher.
			return nil, d.keyError(m, path, "prepend", "wrapped needs prepend, the shell text to put in front of the pool command (e.g. \"singularity exec img.sif\")")
		}
		return launcher.Wrapped(o.Prepend), nil
	},
}

// The launchers' option mappings; the launchers that take no option
// accept only kind.
type (
	launcherKindFile struct {
		Kind string `yaml:"kind"`
	}
	overridesFile struct {
		Kind      string `yaml:"kind"`
		Overrides args   `yaml:"overrides"`
	}
	mpiexecFile struct {
		Kind      string `yaml:"kind"`
		BindCmd   string `yaml:"bind_cmd"`
		Overrides args   `yaml:"overrides"`
	}
	gnuParallelFile struct {
		Kind      string `yaml:"kind"`
		JobLog    string `yaml:"job_log"`
		Overrides args   `yaml:"overrides"`
	}
	wrappedFile struct {
		Kind    string `yaml:"kind"`
		Prepend string `yaml:"prepend"`
	}
)

func plainLauncher(l launcher.Launcher) launcherBuilder {
	return func(d *decoder, m *ast.MappingNode, path string) (launcher.Launcher, error) {
		return l, d.decode(m, path, &launcherKindFile{})
	}
}

func decodeOverrides(d *decoder, m *ast.MappingNode, path string) ([]string, error) {
	var o overridesFile
	err := d.decode(m, path, &o)
	return o.Overrides, err
}

// launcher builds the launcher that the launcher: key of m gives, or nil
// (the default) when m has none.
func (d *decoder) launcher(m *ast.MappingNode, path string) (launcher.Launcher, error) {
	mv := lookup(m, "launcher")
	if mv == nil || isNull(mv.Value) {
		return nil, nil
	}
	lpath := joinKey(path, "launcher")
	known := slices.Sorted(maps.Keys(launcherKinds))
	if s, ok := mv.Value.(*ast.StringNode); ok {
		build, ok := launcherKinds[s.Value]
		if !ok {
			return nil, d.keyError(m, path, "launcher", "unknown launcher %q; known: %s", s.Value, strings.Join(known, ", "))
		}
		if s.Value == "wrapped" {
			return nil, d.keyError(m, path, "launcher", `wrapped needs prepend: write launcher: {kind: wrapped, prepend: "singularity exec img.sif"}`)
		}
		return build(d, nil, lpath)
	}
	if _, ok := mv.Value.(*ast.MappingNode); !ok {
		return nil, d.errorf(mv.Value.GetToken(), lpath, nil, "want a launcher name (%s) or a mapping with a kind: key, got %s", strings.Join(known, ", "), describe(mv.Value))
	}
	lm, kind, err := d.kind(mv.Value, lpath, known)
	if err != nil {
		return nil, err
	}
	return launcherKinds[kind](d, lm, lpath)
}

// args is a command's extra arguments, Parsl's overrides: a list, one
// argument per item, or one string of arguments separated by spaces.
// A string with quotes or backslashes is refused rather than split
// wrongly: the launchers pass each argument as it is, with no shell to
// undo the quoting.
type args []string

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (a *args) UnmarshalYAML(node ast.Node) error {
	switch n := node.(type) {
	case *ast.StringNode:
		if strings.ContainsAny(n.Value, `'"\`) {
			return &valueError{node.GetToken(), fmt.Sprintf("%q has quotes or backslashes; write the arguments as a list, one argument per item", n.Value)}
		}
		*a = strings.Fields(n.Value)
		return nil
	case *ast.SequenceNode:
		var l lines
		if err := l.UnmarshalYAML(n); err != nil {
			return err
		}
		*a = args(l)
		return nil
	}
	return &valueError{node.GetToken(), "want a list of arguments or a string of them, got " + describe(node)}
}
