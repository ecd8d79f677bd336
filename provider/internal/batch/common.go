package batch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Common is what every batch provider's Provider answers the same way: it
// applies its own launcher, has one walltime for all blocks and writes its
// scripts into a ScriptDir. Providers embed it (through an unexported alias,
// so that no new exported field appears on their Provider) and set it up
// with InitCommon. Its fields are unexported and its helpers are functions
// rather than methods so that embedding promotes only the four methods the
// executors call.
type Common struct {
	walltime time.Duration
	script   ScriptDir
}

// InitCommon sets c's walltime and initial script directory ("" means a
// temporary one made at the first submit).
func InitCommon(c *Common, walltime time.Duration, scriptDir string) {
	c.walltime = walltime
	c.script.Set(scriptDir)
}

// AppliesLauncher tells an executor that this provider wraps the command
// with its own Launcher, so the executor must not.
func (c *Common) AppliesLauncher() bool { return true }

// BlockWalltime returns the walltime of every block.
func (c *Common) BlockWalltime() time.Duration { return c.walltime }

// SetScriptDir sets the directory where batch scripts are written (an
// executor passes <run dir>/submit_scripts). It affects later submits only.
func (c *Common) SetScriptDir(dir string) { c.script.Set(dir) }

// ScriptDir returns the directory where batch scripts are written.
func (c *Common) ScriptDir() string { return c.script.Get() }

// EnsureScriptDir makes c's script directory (named after scheduler when it
// is a temporary one) and returns it.
func EnsureScriptDir(c *Common, scheduler string) (string, error) {
	return c.script.Ensure(scheduler)
}

// PrepareSubmit checks the command of a submit and makes stdout and stderr
// absolute in place: schedulers resolve relative output paths against the
// job's working directory, not ours, so the files would land elsewhere.
// Its error is meant for a SubmitError without a script.
func PrepareSubmit(command []string, stdout, stderr *string) error {
	if len(command) == 0 {
		return errors.New("empty command")
	}
	for _, f := range []*string{stdout, stderr} {
		abs, err := filepath.Abs(*f)
		if err != nil {
			return fmt.Errorf("output path %q: %w", *f, err)
		}
		*f = abs
	}
	return nil
}

// WriteScript writes text as <name>.<nanoseconds>.<ext> into c's script
// directory (made if need be) and returns its path; the time stamp keeps a
// resubmitted block from overwriting the script of its predecessor. On
// error the path is "" when the directory could not be made, else the
// script that could not be written, as a SubmitError wants it.
func WriteScript(c *Common, scheduler, name, ext, text string) (string, error) {
	dir, err := EnsureScriptDir(c, scheduler)
	if err != nil {
		return "", err
	}
	script := filepath.Join(dir, fmt.Sprintf("%s.%d.%s", UnsafeName.ReplaceAllString(name, "_"), time.Now().UnixNano(), ext))
	if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
		return script, fmt.Errorf("writing the batch script: %w", err)
	}
	return script, nil
}

// CancelChunks runs cmd (qdel, bkill, condor_rm) on ids, at most n at a
// time, and returns the failures, each wrapped as "<scheduler> provider:
// cancel: ...". A failure for which gone reports true (the scheduler only
// said some jobs had already left) is not one: a job that is gone needs no
// cancelling.
func (r *Runner) CancelChunks(ctx context.Context, cmd string, ids []string, n int, gone func(*CommandError) bool) []error {
	var errs []error
	for _, chunk := range Chunks(ids, n) {
		_, err := r.Run(ctx, nil, cmd, chunk...)
		var ce *CommandError
		if err != nil && errors.As(err, &ce) && gone(ce) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s provider: cancel: %w", r.Scheduler, err))
		}
	}
	return errs
}
