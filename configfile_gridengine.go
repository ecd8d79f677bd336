package parsl

import (
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/parsl-go/parsl/provider/gridengine"
)

// Grid Engine registers its kind in a file of its own, as the other batch
// providers do, so that adding it touches no shared file.
func init() {
	providerKinds["gridengine"] = buildGridEngine
}

// gridEngineFile is the mapping of a gridengine provider.
type gridEngineFile struct {
	Kind             string   `yaml:"kind"`
	Queue            string   `yaml:"queue"`
	Project          string   `yaml:"project"`
	PE               string   `yaml:"pe"`
	Slots            count    `yaml:"slots"`
	Walltime         duration `yaml:"walltime"`
	SchedulerOptions lines    `yaml:"scheduler_options"`
	WorkerInit       lines    `yaml:"worker_init"`
	Launcher         ast.Node `yaml:"launcher"`
	CmdTimeout       duration `yaml:"cmd_timeout"`
	AccountingDelay  duration `yaml:"accounting_delay"`
}

func buildGridEngine(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o gridEngineFile
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	if o.Slots > 0 && o.PE == "" {
		// Slots without a parallel environment would be ignored; Grid
		// Engine grants more than one slot only through a PE.
		return builtProvider{}, d.keyError(m, path, "slots", "slots needs pe (the parallel environment to request them in; `qconf -spl` lists them)")
	}
	l, err := d.launcher(m, path)
	if err != nil {
		return builtProvider{}, err
	}
	p := gridengine.New(gridengine.Options{
		Queue:            o.Queue,
		Project:          o.Project,
		PE:               o.PE,
		Slots:            int(o.Slots),
		Walltime:         time.Duration(o.Walltime),
		SchedulerOptions: o.SchedulerOptions,
		WorkerInit:       o.WorkerInit,
		Launcher:         l,
		CmdTimeout:       time.Duration(o.CmdTimeout),
		AccountingDelay:  time.Duration(o.AccountingDelay),
	})
	return builtProvider{p: p, walltime: time.Duration(o.Walltime)}, nil
}
