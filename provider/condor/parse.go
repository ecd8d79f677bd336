package condor

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/parsl-go/parsl/provider"
)

// The parsers here are pure (text in, values out) so that the output of a
// real HTCondor, saved under testdata/, can be tested without one.

// jobStatuses maps HTCondor's JobStatus attribute (1–7) to a provider
// state. 4 (Completed) is only the default: the exit code decides. 5 (Held)
// and 7 (Suspended) count as held: the job waits for someone to release
// it. 6 (Transferring Output) still runs: its output is not yet back.
var jobStatuses = map[int]struct {
	name  string
	state provider.JobState
}{
	1: {"idle", provider.Pending},
	2: {"running", provider.Running},
	3: {"removed", provider.Cancelled},
	4: {"completed", provider.Completed},
	5: {"held", provider.Held},
	6: {"transferring output", provider.Running},
	7: {"suspended", provider.Held},
}

// row is one line of `condor_q|condor_history ... -af:jt JobStatus
// ExitCode Reason`: tab-separated, so that a reason with blanks stays one
// field; an attribute the job lacks reads "undefined".
type row struct {
	id        string
	jobStatus int
	exitCode  string
	reason    string
}

// parseAf reads -af:jt output.
func parseAf(out string) (map[string]row, error) {
	rows := map[string]row{}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("line %q does not have 4 tab-separated fields", line)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %q: JobStatus %q is not a number", line, f[1])
		}
		rows[f[0]] = row{id: f[0], jobStatus: n, exitCode: f[2], reason: undef(f[3])}
	}
	return rows, nil
}

func undef(s string) string {
	if s == "undefined" {
		return ""
	}
	return s
}

// status turns a row into a JobStatus.
func (r row) status(id string) provider.JobStatus {
	st := provider.JobStatus{JobID: id}
	info, ok := jobStatuses[r.jobStatus]
	if !ok {
		st.State = provider.Unknown
		st.Message = fmt.Sprintf("unknown HTCondor JobStatus %d", r.jobStatus)
		return st
	}
	st.State, st.Message = info.state, info.name
	if r.reason != "" {
		st.Message += ": " + r.reason
	}
	if r.jobStatus != 4 {
		return st
	}
	code, err := strconv.Atoi(r.exitCode)
	if err != nil {
		// A job that ended by a signal has no ExitCode.
		st.State = provider.Failed
		st.Message += "; no exit code (killed by a signal?)"
		return st
	}
	st.ExitCode = code
	if code != 0 {
		st.State = provider.Failed
	}
	return st
}

var submittedRe = regexp.MustCompile(`(?m)^(\d+) job\(s\) submitted to cluster (\d+)\.`)

// parseSubmit returns the job ID of the single job condor_submit made:
// "<cluster>.0".
func parseSubmit(out string) (string, error) {
	m := submittedRe.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("condor_submit did not say which cluster it made")
	}
	if m[1] != "1" {
		return "", fmt.Errorf("condor_submit made %s jobs in cluster %s, not 1", m[1], m[2])
	}
	return m[2] + ".0", nil
}
