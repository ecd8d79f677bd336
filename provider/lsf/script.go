package lsf

import (
	"fmt"
	"strings"
	"time"

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

// renderScript writes the bsub script. It is pure, so that the script can
// be checked against a golden file. Values that reach a #BSUB line are
// refused if they could end the line; the shell part is quoted.
func renderScript(p scriptParams) (string, error) {
	o := p.Opts
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	var dirErr error
	directive := func(flag, value string) {
		if err := batch.DirectiveValue("#BSUB "+flag, value); err != nil && dirErr == nil {
			dirErr = err
		}
		if strings.ContainsAny(value, " \t'") {
			// bsub reads directive values with shell-like quoting.
			value = `"` + value + `"`
		}
		fmt.Fprintf(&b, "#BSUB %s %s\n", flag, value)
	}
	directive("-J", p.JobName)
	directive("-o", p.Stdout)
	directive("-e", p.Stderr)
	directive("-W", formatMinutes(o.Walltime))
	if o.RequestByNodes {
		directive("-nnodes", fmt.Sprint(o.NodesPerBlock))
	} else {
		directive("-n", fmt.Sprint(o.NodesPerBlock*o.CoresPerNode))
		// Written by hand: the value has quotes of its own.
		fmt.Fprintf(&b, "#BSUB -R \"span[ptile=%d]\"\n", o.CoresPerNode)
	}
	if o.Queue != "" {
		directive("-q", o.Queue)
	}
	if o.Project != "" {
		directive("-P", o.Project)
	}
	if err := batch.SchedulerLines(&b, "#BSUB ", o.SchedulerOptions); err != nil {
		return "", err
	}
	if dirErr != nil {
		return "", dirErr
	}
	b.WriteString("\n")
	exports := append([]string{"JOBNAME=" + p.JobName, fmt.Sprintf("PARSL_CORES=%d", o.CoresPerNode)}, p.Env...)
	if err := batch.ShellBody(&b, exports, o.WorkerInit, p.Command); err != nil {
		return "", err
	}
	return b.String(), nil
}

// formatMinutes formats d for #BSUB -W as hours:minutes, rounded up to
// whole minutes (LSF's unit), never less than one minute.
func formatMinutes(d time.Duration) string {
	m := int64((d + time.Minute - 1) / time.Minute)
	if m < 1 {
		m = 1
	}
	return fmt.Sprintf("%d:%02d", m/60, m%60)
}
