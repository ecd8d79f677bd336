package pbs

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/parsl-go/parsl/provider"
)

// The parsers here are pure (text in, values out) so that real qstat
// output, saved under testdata/, can be tested without PBS.

// stateInfo is how one PBS job state letter maps to a provider state.
type stateInfo struct {
	name  string // what the letter means, for messages
	state provider.JobState
}

// states maps every job state letter of PBS Pro (qstat(1B) "Job states")
// and Torque (qstat(1B) standard output) to a provider state. F, X and C
// are finished: their final state depends on the exit status, which
// finalState reads; Completed here is only the default.
//
// Choices: E (exiting) still counts as running, because the job still
// holds its nodes and its exit status is not final yet (Parsl called it
// COMPLETED, which lost failures). S and U (suspended) count as held, as in
// Parsl; W and T are waiting to run; M (moved to another server) is still
// queued there.
var states = map[string]stateInfo{
	"B": {"array job has begun", provider.Running},
	"E": {"exiting after having run", provider.Running},
	"F": {"finished", provider.Completed},
	"H": {"held", provider.Held},
	"M": {"moved to another server", provider.Pending},
	"Q": {"queued", provider.Pending},
	"R": {"running", provider.Running},
	"S": {"suspended", provider.Held},
	"T": {"in transit to a new location", provider.Pending},
	"U": {"suspended because the workstation is busy", provider.Held},
	"W": {"waiting for its execution time", provider.Pending},
	"X": {"subjob finished", provider.Completed},
	"C": {"completed (Torque)", provider.Completed},
}

// finished reports whether a state letter means the job has ended.
func finished(letter string) bool { return letter == "F" || letter == "X" || letter == "C" }

// record is one job of `qstat -f` output.
type record struct {
	id    string
	attrs map[string]string
}

// parseQstatFull reads `qstat -f` (PBS Pro and Torque alike): a "Job Id:
// ID" line, then indented "name = value" lines, where a long value goes on
// over further lines indented with a tab (PBS Pro and Torque wrap at about
// 80 columns unless -w or -1 is given).
func parseQstatFull(out string) ([]record, error) {
	var recs []record
	var last string // attribute the next continuation line belongs to
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if id, ok := strings.CutPrefix(line, "Job Id:"); ok {
			recs = append(recs, record{id: strings.TrimSpace(id), attrs: map[string]string{}})
			last = ""
			continue
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("line %q comes before any \"Job Id:\" line", line)
		}
		r := recs[len(recs)-1]
		// An attribute is indented by four spaces; a continuation by a tab
		// (PBS Pro) or by more spaces (Torque).
		cont := strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "     ")
		if k, v, ok := strings.Cut(line, " = "); ok && !cont && strings.HasPrefix(line, "    ") {
			last = strings.TrimSpace(k)
			r.attrs[last] = strings.TrimSpace(v)
			continue
		}
		if last != "" && cont {
			r.attrs[last] += strings.TrimSpace(line)
			continue
		}
		return nil, fmt.Errorf("unexpected line %q in the record of job %s", line, r.id)
	}
	return recs, sc.Err()
}

// status turns a record into a JobStatus. cancelled says that this
// provider asked qdel to end the job, which tells a cancelled job from a
// failed one: PBS records both as finished with a non-zero exit status.
func (r record) status(id string, cancelled bool) provider.JobStatus {
	st := provider.JobStatus{JobID: id, State: provider.Unknown}
	letter := r.attrs["job_state"]
	info, ok := states[letter]
	if !ok {
		st.Message = fmt.Sprintf("unknown PBS job state %q", letter)
		return st
	}
	st.State = info.state
	st.Message = info.name
	if c := r.attrs["comment"]; c != "" {
		st.Message += ": " + c
	}
	if !finished(letter) {
		return st
	}
	// PBS Pro writes Exit_status, Torque exit_status.
	es, ok := r.attrs["Exit_status"]
	if !ok {
		es, ok = r.attrs["exit_status"]
	}
	if !ok {
		// A job deleted before it ran finishes without an exit status.
		st.State = provider.Cancelled
		st.Message += "; it never ran (no exit status)"
		return st
	}
	code, err := strconv.Atoi(es)
	if err != nil {
		st.State = provider.Failed
		st.Message += fmt.Sprintf("; unreadable exit status %q", es)
		return st
	}
	st.ExitCode = code
	switch {
	case cancelled:
		st.State = provider.Cancelled
	case code == exitKillWalltime:
		st.State = provider.Timeout
		st.Message += "; walltime exceeded"
	case code == 0:
		st.State = provider.Completed
	default:
		st.State = provider.Failed
		if code > 256 {
			// PBS Pro reports a job killed by signal N as 256+N.
			st.Message += fmt.Sprintf("; killed by signal %d", code-256)
		} else if code < 0 {
			st.Message += "; PBS could not run or finish the job (negative exit status: see tracejob)"
		}
	}
	return st
}

// exitKillWalltime is PBS Pro's JOB_EXEC_KILL_WALLTIME exit status: the
// job ran past its walltime and the MoM killed it.
const exitKillWalltime = -29

// isGoneJob reports whether a qstat or qdel stderr line says that a job
// is not (any more) in the queue: "qstat: Unknown Job Id 12.srv" (PBS Pro),
// "qstat: Unknown Job Id Error 12.srv" (Torque), or PBS Pro's "qstat:
// 12.srv Job has finished, use -x or -H to obtain historical job
// information" for a finished job asked about without -x.
func isGoneJob(line string) bool {
	return strings.Contains(line, "Unknown Job Id") || strings.Contains(line, "Job has finished")
}

// seq is the sequence number of a job ID, the part before the first dot:
// qsub may print "12.server.domain" where qstat prints "12.server".
func seq(id string) string {
	s, _, _ := strings.Cut(id, ".")
	return s
}

// parseQsub returns the job ID qsub printed: its last non-empty line.
func parseQsub(out string) (string, error) {
	fields := strings.Fields(strings.TrimSpace(out))
	if len(fields) == 0 {
		return "", fmt.Errorf("qsub printed no job ID")
	}
	id := fields[len(fields)-1]
	if _, err := strconv.Atoi(strings.TrimSuffix(seq(id), "[]")); err != nil {
		return "", fmt.Errorf("qsub printed %q, not a job ID", strings.TrimSpace(out))
	}
	return id, nil
}
