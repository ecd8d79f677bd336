package slurm

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// scriptParams is everything that goes into one block's batch script.
type scriptParams struct {
	JobName        string
	Stdout, Stderr string
	Opts           Options
	Env            []string
	Command        []string // already wrapped by the launcher
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// renderScript writes the sbatch script. It is pure, so that the script
// can be checked against a golden file. Values that reach a #SBATCH line
// are refused if they could end the line; everything in the shell part is
// single-quoted, so no value is ever expanded by the shell.
func renderScript(p scriptParams) (string, error) {
	o := p.Opts
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	var dirErr error
	directive := func(name, value string) {
		if strings.ContainsAny(value, "\n\r\"") {
			if dirErr == nil {
				dirErr = fmt.Errorf("the value %q of #SBATCH --%s contains a newline or a double quote, which a batch script directive cannot hold", value, name)
			}
			return
		}
		if value == "" {
			fmt.Fprintf(&b, "#SBATCH --%s\n", name)
			return
		}
		if strings.ContainsAny(value, " \t'") {
			// sbatch reads directive values with shell-like quoting.
			value = `"` + value + `"`
		}
		fmt.Fprintf(&b, "#SBATCH --%s=%s\n", name, value)
	}
	directive("job-name", p.JobName)
	directive("output", p.Stdout)
	directive("error", p.Stderr)
	directive("nodes", fmt.Sprint(o.NodesPerBlock))
	directive("ntasks-per-node", "1")
	directive("time", formatWalltime(o.Walltime))
	if o.Exclusive == nil || *o.Exclusive {
		directive("exclusive", "")
	}
	for _, d := range []struct{ name, value string }{
		{"partition", o.Partition}, {"account", o.Account}, {"qos", o.QOS},
		{"constraint", o.Constraint}, {"clusters", o.Clusters},
	} {
		if d.value != "" {
			directive(d.name, d.value)
		}
	}
	if o.CoresPerNode > 0 {
		directive("cpus-per-task", fmt.Sprint(o.CoresPerNode))
	}
	if o.MemPerNodeMB > 0 {
		directive("mem", fmt.Sprintf("%dM", o.MemPerNodeMB))
	}
	for _, line := range o.SchedulerOptions {
		if strings.ContainsAny(line, "\n\r") {
			return "", fmt.Errorf("scheduler option %q contains a newline; give one option per element", line)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			line = "#SBATCH " + line
		}
		b.WriteString(line + "\n")
	}
	if dirErr != nil {
		return "", dirErr
	}
	b.WriteString("\n")
	// What Parsl exports: the job's name, and the resources the pool may
	// size itself to.
	exports := []string{"JOBNAME=" + p.JobName}
	if o.CoresPerNode > 0 {
		exports = append(exports, fmt.Sprintf("PARSL_CORES=%d", o.CoresPerNode))
	}
	if o.MemPerNodeMB > 0 {
		exports = append(exports, fmt.Sprintf("PARSL_MEMORY_GB=%g", float64(o.MemPerNodeMB)/1024))
	}
	for _, kv := range append(exports, p.Env...) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envNameRe.MatchString(k) {
			return "", fmt.Errorf("environment entry %q is not NAME=value with a shell variable name", kv)
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	if len(o.WorkerInit) > 0 {
		b.WriteString("\n# worker init\n")
		for _, line := range o.WorkerInit {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\n")
	q := make([]string, len(p.Command))
	for i, a := range p.Command {
		q[i] = shellQuote(a)
	}
	b.WriteString(strings.Join(q, " ") + "\n")
	return b.String(), nil
}

// shellQuote quotes s for bash: as is when it has only safe characters,
// otherwise in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// formatWalltime formats d for #SBATCH --time as days-hours:minutes:seconds,
// rounded up to whole minutes since Slurm counts time limits in minutes
// (and would round up itself); never less than one minute.
func formatWalltime(d time.Duration) string {
	m := int64((d + time.Minute - 1) / time.Minute)
	if m < 1 {
		m = 1
	}
	days, h, min := m/(24*60), (m/60)%24, m%60
	if days > 0 {
		return fmt.Sprintf("%d-%02d:%02d:00", days, h, min)
	}
	return fmt.Sprintf("%02d:%02d:00", h, min)
}
