package pbs

import (
	"fmt"
	"strings"

	"github.com/parsl-go/parsl/provider/internal/batch"
)

// scriptParams is everything that goes into one block's batch script.
type scriptParams struct {
	JobName        string
	Stdout, Stderr string
	Opts           Options
	Env            []string
	Command        []string // already wrapped by the launcher
}

// renderScript writes the qsub script. It is pure, so that the script can
// be checked against a golden file. Values that reach a #PBS line are
// refused if they could end the line; the shell part is quoted.
func renderScript(p scriptParams) (string, error) {
	o := p.Opts
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	var dirErr error
	directive := func(flag, value string) {
		if err := batch.DirectiveValue("#PBS "+flag, value); err != nil && dirErr == nil {
			dirErr = err
		}
		fmt.Fprintf(&b, "#PBS %s %s\n", flag, value)
	}
	// As in Parsl: bash, no mail, the name, the walltime, the resources.
	directive("-S", "/bin/bash")
	directive("-N", p.JobName)
	directive("-m", "n")
	directive("-l", "walltime="+batch.FormatHMS(o.Walltime))
	if o.Flavor == Torque {
		directive("-l", fmt.Sprintf("nodes=%d:ppn=%d", o.NodesPerBlock, o.CPUsPerNode))
	} else {
		sel := fmt.Sprintf("select=%d:ncpus=%d", o.NodesPerBlock, o.CPUsPerNode)
		if s := strings.TrimPrefix(o.SelectOptions, ":"); s != "" {
			sel += ":" + s
		}
		directive("-l", sel)
	}
	if strings.ContainsAny(p.Stdout+p.Stderr, " \t") {
		// qsub splits a directive's value at blanks and has no quoting.
		return "", fmt.Errorf("output paths %q and %q must not contain blanks, which a #PBS -o/-e directive cannot hold", p.Stdout, p.Stderr)
	}
	directive("-o", p.Stdout)
	directive("-e", p.Stderr)
	if o.Queue != "" {
		directive("-q", o.Queue)
	}
	if o.Account != "" {
		directive("-A", o.Account)
	}
	if err := batch.SchedulerLines(&b, "#PBS ", o.SchedulerOptions); err != nil {
		return "", err
	}
	if dirErr != nil {
		return "", dirErr
	}
	b.WriteString("\n")
	// PBS starts the script in $HOME; Parsl's pools expect the submit
	// directory, which PBS records in PBS_O_WORKDIR.
	b.WriteString(`cd "${PBS_O_WORKDIR:-.}"` + "\n")
	exports := append([]string{"JOBNAME=" + p.JobName, fmt.Sprintf("PARSL_CORES=%d", o.CPUsPerNode)}, p.Env...)
	if err := batch.ShellBody(&b, exports, o.WorkerInit, p.Command); err != nil {
		return "", err
	}
	return b.String(), nil
}
