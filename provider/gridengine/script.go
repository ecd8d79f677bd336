package gridengine

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
// be checked against a golden file. Values that reach a #$ line are refused
// if they could end the line or be split by qsub; the shell part is quoted.
func renderScript(p scriptParams) (string, error) {
	o := p.Opts
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	var dirErr error
	directive := func(flag string, values ...string) {
		for _, v := range values {
			if err := batch.DirectiveValue("#$ "+flag, v); err != nil && dirErr == nil {
				dirErr = err
			}
			// qsub splits a directive's arguments at blanks and has no
			// quoting, so a blank would turn one value into two.
			if strings.ContainsAny(v, " \t") && dirErr == nil {
				dirErr = fmt.Errorf("the value %q of #$ %s contains a blank, which a Grid Engine directive cannot hold", v, flag)
			}
		}
		fmt.Fprintf(&b, "#$ %s\n", strings.TrimSpace(flag+" "+strings.Join(values, " ")))
	}
	// As in Parsl's GridEngineProvider: bash, the name, the streams, the
	// submit directory and the walltime.
	directive("-S", "/bin/bash")
	directive("-N", p.JobName)
	directive("-o", p.Stdout)
	directive("-e", p.Stderr)
	// The pool starts where the driver runs, as Slurm's jobs do, rather
	// than in $HOME.
	directive("-cwd")
	directive("-l", "h_rt="+batch.FormatHMS(o.Walltime))
	if o.PE != "" {
		directive("-pe", o.PE, fmt.Sprint(o.Slots))
	}
	if o.Queue != "" {
		directive("-q", o.Queue)
	}
	if o.Project != "" {
		directive("-P", o.Project)
	}
	if err := batch.SchedulerLines(&b, "#$ ", o.SchedulerOptions); err != nil {
		return "", err
	}
	if dirErr != nil {
		return "", dirErr
	}
	b.WriteString("\n")
	exports := []string{"JOBNAME=" + p.JobName}
	if o.PE != "" {
		// Grid Engine sets NSLOTS in the job too; PARSL_CORES is what a
		// pool reads to size itself.
		exports = append(exports, fmt.Sprintf("PARSL_CORES=%d", o.Slots))
	}
	if err := batch.ShellBody(&b, append(exports, p.Env...), o.WorkerInit, p.Command); err != nil {
		return "", err
	}
	return b.String(), nil
}
