package condor

import (
	"fmt"
	"strings"

	"github.com/parsl-go/parsl/provider/internal/batch"
)

// scriptParams is everything that goes into one block's job script and
// submit description.
type scriptParams struct {
	JobName        string
	Script         string // path of the job script, the job's executable
	Log            string // HTCondor's user log of the job
	Stdout, Stderr string
	Opts           Options
	Env            []string
	Command        []string // already wrapped by the launcher
}

// renderScript writes the job script: exports, worker init, command. The
// environment goes here rather than in the description's environment
// command, whose quoting rules differ between HTCondor versions.
func renderScript(p scriptParams) (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	exports := []string{"JOBNAME=" + p.JobName}
	if p.Opts.CoresPerSlot > 0 {
		exports = append(exports, fmt.Sprintf("PARSL_CORES=%d", p.Opts.CoresPerSlot))
	}
	if p.Opts.MemPerSlotMB > 0 {
		exports = append(exports, fmt.Sprintf("PARSL_MEMORY_GB=%g", float64(p.Opts.MemPerSlotMB)/1024))
	}
	if err := batch.ShellBody(&b, append(exports, p.Env...), p.Opts.WorkerInit, p.Command); err != nil {
		return "", err
	}
	return b.String(), nil
}

// renderSubmit writes the condor_submit description. It is pure, so that
// it can be checked against a golden file. A value with a newline would
// start a new submit command, so values are refused if they have one.
func renderSubmit(p scriptParams) (string, error) {
	o := p.Opts
	var b strings.Builder
	var err error
	cmd := func(name, value string) {
		if strings.ContainsAny(value, "\n\r") && err == nil {
			err = fmt.Errorf("the value %q of submit command %s contains a newline", value, name)
		}
		fmt.Fprintf(&b, "%s = %s\n", name, value)
	}
	fmt.Fprintf(&b, "# Parsl block %s\n", p.JobName)
	cmd("universe", "vanilla")
	cmd("executable", p.Script)
	cmd("output", p.Stdout)
	cmd("error", p.Stderr)
	cmd("log", p.Log)
	// Parsl's name for the job, for condor_q -af JobBatchName.
	cmd("batch_name", p.JobName)
	if o.CoresPerSlot > 0 {
		cmd("request_cpus", fmt.Sprint(o.CoresPerSlot))
	}
	if o.MemPerSlotMB > 0 {
		cmd("request_memory", fmt.Sprint(o.MemPerSlotMB))
	}
	if o.Requirements != "" {
		cmd("requirements", o.Requirements)
	}
	if o.Project != "" {
		if strings.Contains(o.Project, `"`) {
			return "", fmt.Errorf("project %q contains a double quote", o.Project)
		}
		cmd("+ProjectName", `"`+o.Project+`"`)
	}
	// HTCondor decides at submit time whether the spool is shared; the
	// job writes its output where it was told either way.
	if len(o.TransferInputFiles) > 0 {
		cmd("should_transfer_files", "IF_NEEDED")
		cmd("transfer_input_files", strings.Join(o.TransferInputFiles, ","))
	}
	for _, line := range o.SchedulerOptions {
		if strings.ContainsAny(line, "\n\r") {
			return "", fmt.Errorf("scheduler option %q contains a newline; give one submit command per element", line)
		}
		if line = strings.TrimSpace(line); line != "" {
			b.WriteString(line + "\n")
		}
	}
	if err != nil {
		return "", err
	}
	// One queue statement: several in one file are deprecated and
	// HTCondor 23 makes a cluster per statement.
	b.WriteString("queue 1\n")
	return b.String(), nil
}
