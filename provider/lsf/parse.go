package lsf

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/parsl-go/parsl/provider"
)

// The parsers here are pure (text in, values out) so that real bjobs and
// bsub output, saved under testdata/, can be tested without LSF.

// states maps every LSF job state (bjobs(1) "STAT") to a provider state.
//
// Choices: PSUSP, USUSP and SSUSP (suspended while pending, by the user,
// by LSF) count as held, since a suspended job can resume; Parsl called
// them CANCELLED and then asked for more blocks while they still held
// nodes. ZOMBI (killed while its host was unreachable; LSF shows it as
// EXIT once the host answers) counts as failed. UNKWN (mbatchd lost
// contact with the host; the job may still run) is unknown. WAIT (a chunk
// job member waiting) and PROV (waiting for a host to be provisioned) are
// pending.
var states = map[string]struct {
	name  string
	state provider.JobState
}{
	"PEND":  {"pending", provider.Pending},
	"PROV":  {"waiting for its host to be provisioned", provider.Pending},
	"WAIT":  {"waiting to run in a chunk", provider.Pending},
	"RUN":   {"running", provider.Running},
	"DONE":  {"done (exit code 0)", provider.Completed},
	"EXIT":  {"exited with a non-zero exit code, or was killed (see `bjobs -l` or `bhist -l` for why)", provider.Failed},
	"PSUSP": {"suspended while pending", provider.Held},
	"USUSP": {"suspended by its owner or an administrator", provider.Held},
	"SSUSP": {"suspended by LSF", provider.Held},
	"ZOMBI": {"killed while its execution host was unreachable", provider.Failed},
	"UNKWN": {"unknown: LSF lost contact with its execution host", provider.Unknown},
}

// parseBjobs reads the default bjobs table: a header line ("JOBID USER
// STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME"), then one job per
// line. Only the first and third columns are read: they always have a
// value, where EXEC_HOST is blank for a pending job. The messages LSF
// prints instead of rows ("Job <1> is not found", "No unfinished job
// found") are skipped.
func parseBjobs(out string) (map[string]string, error) {
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "JOBID" || isGoneLine(line) {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("line %q has fewer than 3 columns", line)
		}
		rows[f[0]] = f[2]
	}
	return rows, nil
}

// isGoneLine reports whether a line of bjobs or bkill says that a job is
// not (or no longer) there to see or kill.
func isGoneLine(line string) bool {
	for _, s := range []string{"is not found", "No unfinished job found", "Job has already finished", "No matching job found"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

var submittedRe = regexp.MustCompile(`Job <(\d+)> is submitted to`)

// parseBsub returns the job ID from "Job <123> is submitted to (default)
// queue <normal>.".
func parseBsub(out string) (string, error) {
	m := submittedRe.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("bsub did not say which job it made")
	}
	return m[1], nil
}
