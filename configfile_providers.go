package parsl

import (
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/parsl-go/parsl/provider/condor"
	"github.com/parsl-go/parsl/provider/lsf"
	"github.com/parsl-go/parsl/provider/pbs"
)

// The batch scheduler providers beyond Slurm register their kinds here, in
// a file of their own, so that adding one does not touch configfile.go.
func init() {
	providerKinds["pbs"] = buildPBS
	providerKinds["lsf"] = buildLSF
	providerKinds["condor"] = buildCondor
}

// pbsFile is the mapping of a pbs provider.
type pbsFile struct {
	Kind             string   `yaml:"kind"`
	Flavor           string   `yaml:"flavor"`
	Queue            string   `yaml:"queue"`
	Account          string   `yaml:"account"`
	NodesPerBlock    count    `yaml:"nodes_per_block"`
	CPUsPerNode      count    `yaml:"cpus_per_node"`
	SelectOptions    string   `yaml:"select_options"`
	Walltime         duration `yaml:"walltime"`
	SchedulerOptions lines    `yaml:"scheduler_options"`
	WorkerInit       lines    `yaml:"worker_init"`
	Launcher         ast.Node `yaml:"launcher"`
	CmdTimeout       duration `yaml:"cmd_timeout"`
}

func buildPBS(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o pbsFile
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	var flavor pbs.Flavor
	switch o.Flavor {
	case "", "pbspro":
		flavor = pbs.PBSPro
	case "torque":
		flavor = pbs.Torque
	default:
		return builtProvider{}, d.keyError(m, path, "flavor", "unknown flavor %q; known: pbspro, torque", o.Flavor)
	}
	l, err := d.launcher(m, path)
	if err != nil {
		return builtProvider{}, err
	}
	p := pbs.New(pbs.Options{
		Flavor:           flavor,
		Queue:            o.Queue,
		Account:          o.Account,
		NodesPerBlock:    int(o.NodesPerBlock),
		CPUsPerNode:      int(o.CPUsPerNode),
		SelectOptions:    o.SelectOptions,
		Walltime:         time.Duration(o.Walltime),
		SchedulerOptions: o.SchedulerOptions,
		WorkerInit:       o.WorkerInit,
		Launcher:         l,
		CmdTimeout:       time.Duration(o.CmdTimeout),
	})
	return builtProvider{p: p, walltime: time.Duration(o.Walltime)}, nil
}

// lsfFile is the mapping of a lsf provider.
type lsfFile struct {
	Kind             string   `yaml:"kind"`
	Queue            string   `yaml:"queue"`
	Project          string   `yaml:"project"`
	NodesPerBlock    count    `yaml:"nodes_per_block"`
	CoresPerNode     count    `yaml:"cores_per_node"`
	RequestByNodes   *bool    `yaml:"request_by_nodes"`
	Walltime         duration `yaml:"walltime"`
	SchedulerOptions lines    `yaml:"scheduler_options"`
	WorkerInit       lines    `yaml:"worker_init"`
	Launcher         ast.Node `yaml:"launcher"`
	CmdTimeout       duration `yaml:"cmd_timeout"`
}

func buildLSF(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o lsfFile
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	l, err := d.launcher(m, path)
	if err != nil {
		return builtProvider{}, err
	}
	p := lsf.New(lsf.Options{
		Queue:            o.Queue,
		Project:          o.Project,
		NodesPerBlock:    int(o.NodesPerBlock),
		CoresPerNode:     int(o.CoresPerNode),
		RequestByNodes:   o.RequestByNodes != nil && *o.RequestByNodes,
		Walltime:         time.Duration(o.Walltime),
		SchedulerOptions: o.SchedulerOptions,
		WorkerInit:       o.WorkerInit,
		Launcher:         l,
		CmdTimeout:       time.Duration(o.CmdTimeout),
	})
	return builtProvider{p: p, walltime: time.Duration(o.Walltime)}, nil
}

// condorFile is the mapping of a condor provider.
type condorFile struct {
	Kind               string   `yaml:"kind"`
	CoresPerSlot       count    `yaml:"cores_per_slot"`
	MemPerSlotMB       count    `yaml:"mem_per_slot_mb"`
	Requirements       string   `yaml:"requirements"`
	Project            string   `yaml:"project"`
	TransferInputFiles []string `yaml:"transfer_input_files"`
	Walltime           duration `yaml:"walltime"`
	SchedulerOptions   lines    `yaml:"scheduler_options"`
	WorkerInit         lines    `yaml:"worker_init"`
	Launcher           ast.Node `yaml:"launcher"`
	CmdTimeout         duration `yaml:"cmd_timeout"`
}

func buildCondor(d *decoder, m *ast.MappingNode, path string) (builtProvider, error) {
	var o condorFile
	if err := d.decode(m, path, &o); err != nil {
		return builtProvider{}, err
	}
	l, err := d.launcher(m, path)
	if err != nil {
		return builtProvider{}, err
	}
	p := condor.New(condor.Options{
		CoresPerSlot:       int(o.CoresPerSlot),
		MemPerSlotMB:       int(o.MemPerSlotMB),
		Requirements:       o.Requirements,
		Project:            o.Project,
		TransferInputFiles: o.TransferInputFiles,
		Walltime:           time.Duration(o.Walltime),
		SchedulerOptions:   o.SchedulerOptions,
		WorkerInit:         o.WorkerInit,
		Launcher:           l,
		CmdTimeout:         time.Duration(o.CmdTimeout),
	})
	return builtProvider{p: p, walltime: time.Duration(o.Walltime)}, nil
}
