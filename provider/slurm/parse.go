package slurm

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/parsl-go/parsl/provider"
)

// The parsers here are pure (text in, values out) so that the output of
// real Slurm commands, saved under testdata/, can be tested without Slurm.

// stateInfo is how one Slurm job state maps to a provider state.
type stateInfo struct {
	long  string // the long name, used in messages
	state provider.JobState
}

// states maps every Slurm job state, by long name (sacct, scontrol,
// squeue %T) and by short code (squeue %t), to a provider state. Parsl's
// squeue table knew only the short codes and its sacct table only some long
// names, so a RUNNING job read as UNKNOWN (Parsl #2255) and Parsl kept
// asking for blocks.
//
// The choices follow Parsl where it has one: COMPLETING counts as running
// (the block still holds its nodes); PREEMPTED and DEADLINE count as
// TIMEOUT, an end the scheduler imposed rather than a failure of the block;
// SUSPENDED and the hold states count as HELD.
var states = func() map[string]stateInfo {
	m := map[string]stateInfo{}
	for _, s := range []struct {
		long, short string
		state       provider.JobState
	}{
		{"PENDING", "PD", provider.Pending},
		{"CONFIGURING", "CF", provider.Pending},
		{"REQUEUED", "RQ", provider.Pending},
		{"REQUEUE_FED", "RF", provider.Pending},
		{"RUNNING", "R", provider.Running},
		{"COMPLETING", "CG", provider.Running},
		{"RESIZING", "RS", provider.Running},
		{"SIGNALING", "SI", provider.Running},
		{"STAGE_OUT", "SO", provider.Running},
		{"SUSPENDED", "S", provider.Held},
		{"STOPPED", "ST", provider.Held},
		{"REQUEUE_HOLD", "RH", provider.Held},
		{"RESV_DEL_HOLD", "RD", provider.Held},
		{"COMPLETED", "CD", provider.Completed},
		{"CANCELLED", "CA", provider.Cancelled},
		{"FAILED", "F", provider.Failed},
		{"NODE_FAIL", "NF", provider.Failed},
		{"BOOT_FAIL", "BF", provider.Failed},
		{"OUT_OF_MEMORY", "OOM", provider.Failed},
		{"REVOKED", "RV", provider.Failed},
		{"SPECIAL_EXIT", "SE", provider.Failed},
		{"TIMEOUT", "TO", provider.Timeout},
		{"DEADLINE", "DL", provider.Timeout},
		{"PREEMPTED", "PR", provider.Timeout},
	} {
		m[s.long] = stateInfo{s.long, s.state}
		m[s.short] = stateInfo{s.long, s.state}
	}
	return m
}()

// mapState maps a Slurm state word to a provider state. It accepts long
// names and short codes, sacct's decorations ("CANCELLED by 0", the "+" of
// a truncated column) and any case. The second result is the long name
// (or the word itself when unknown); an unknown word maps to Unknown.
func mapState(word string) (provider.JobState, string) {
	w := strings.ToUpper(strings.TrimSpace(word))
	if i := strings.IndexByte(w, ' '); i >= 0 {
		w = w[:i]
	}
	w = strings.TrimRight(w, "+")
	if si, ok := states[w]; ok {
		return si.state, si.long
	}
	return provider.Unknown, w
}

// held refines Pending: Slurm reports a held job as PENDING with reason
// JobHeldUser or JobHeldAdmin, and such a job will not start by itself,
// which a scaling strategy needs to know.
func held(st provider.JobState, reason string) provider.JobState {
	if st == provider.Pending && strings.HasPrefix(reason, "JobHeld") {
		return provider.Held
	}
	return st
}

// jobRef is a job ID as sbatch prints it with --parsable: "123" or, on a
// multi-cluster setup, "123;cluster".
type jobRef struct {
	id, cluster string
}

func (r jobRef) String() string {
	if r.cluster == "" {
		return r.id
	}
	return r.id + ";" + r.cluster
}

var jobIDRe = regexp.MustCompile(`^[0-9]+(_[0-9]+)?(\+[0-9]+)?$`)

// parseJobRef parses a job ID given by sbatch --parsable or by this
// provider's Submit.
func parseJobRef(s string) (jobRef, error) {
	s = strings.TrimSpace(s)
	id, cluster, _ := strings.Cut(s, ";")
	if !jobIDRe.MatchString(id) {
		return jobRef{}, fmt.Errorf("%q is not a Slurm job ID", s)
	}
	return jobRef{id: id, cluster: strings.TrimSpace(cluster)}, nil
}

// parseSbatch finds the job ID in the output of sbatch --parsable: the last
// non-empty line (sites' submit filters may print notices before it).
func parseSbatch(stdout string) (jobRef, error) {
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return jobRef{}, fmt.Errorf("sbatch printed no job ID")
	}
	return parseJobRef(last)
}

// squeueFormat is the --format given to squeue: job ID, short state and
// reason, separated by a character that none of them contains.
const squeueFormat = "%i|%t|%r"

// queueRow is one job as squeue reports it.
type queueRow struct {
	state  provider.JobState
	long   string // long state name
	reason string
}

// parseSqueue parses the output of squeue --noheader --format=squeueFormat
// into rows by job ID. Lines it does not understand (a "CLUSTER: name"
// banner, warnings) are skipped.
func parseSqueue(out string) map[string]queueRow {
	rows := map[string]queueRow{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 2 || !jobIDRe.MatchString(f[0]) {
			continue
		}
		st, long := mapState(f[1])
		r := queueRow{state: st, long: long}
		if len(f) > 2 && f[2] != "None" {
			r.reason = f[2]
		}
		r.state = held(r.state, r.reason)
		rows[f[0]] = r
	}
	return rows
}

// finalState is a job's state with its exit code, from scontrol or sacct.
type finalState struct {
	state    provider.JobState
	long     string
	exitCode int
	signal   int
	reason   string
}

// parseExitCode parses Slurm's "code:signal".
func parseExitCode(s string) (code, sig int, err error) {
	c, g, ok := strings.Cut(strings.TrimSpace(s), ":")
	if code, err = strconv.Atoi(c); err != nil {
		return 0, 0, fmt.Errorf("exit code %q: %w", s, err)
	}
	if ok {
		if sig, err = strconv.Atoi(g); err != nil {
			return 0, 0, fmt.Errorf("exit code %q: %w", s, err)
		}
	}
	return code, sig, nil
}

var scontrolField = regexp.MustCompile(`(?:^|\s)(JobId|JobState|Reason|ExitCode)=(\S*)`)

// parseScontrol parses `scontrol show job -o ID`: one line per job (more
// for arrays and heterogeneous jobs), fields "Key=Value" separated by
// spaces. Only fields whose values have no spaces are read, so a command or
// directory with spaces cannot shift them.
func parseScontrol(out string) (map[string]finalState, error) {
	res := map[string]finalState{}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var id string
		var fs finalState
		seen := 0
		for _, m := range scontrolField.FindAllStringSubmatch(line, -1) {
			switch m[1] {
			case "JobId":
				id = m[2]
			case "JobState":
				fs.state, fs.long = mapState(m[2])
				seen++
			case "Reason":
				if m[2] != "None" {
					fs.reason = m[2]
				}
			case "ExitCode":
				var err error
				if fs.exitCode, fs.signal, err = parseExitCode(m[2]); err != nil {
					return nil, fmt.Errorf("scontrol line for job %s: %w", id, err)
				}
				seen++
			}
		}
		if id == "" || seen < 2 {
			return nil, fmt.Errorf("scontrol printed a line without JobId, JobState and ExitCode: %q", line)
		}
		fs.state = held(fs.state, fs.reason)
		res[id] = fs
	}
	return res, nil
}

// sacctFormat is the -o given to sacct (with -X -P -n).
const sacctFormat = "JobID,State,ExitCode,Reason"

// parseSacct parses `sacct -X -P -n -o sacctFormat`: "id|state|code:sig|reason".
func parseSacct(out string) (map[string]finalState, error) {
	res := map[string]finalState{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 3 || !jobIDRe.MatchString(f[0]) {
			continue
		}
		var fs finalState
		fs.state, fs.long = mapState(f[1])
		var err error
		if fs.exitCode, fs.signal, err = parseExitCode(f[2]); err != nil {
			return nil, fmt.Errorf("sacct line for job %s: %w", f[0], err)
		}
		if len(f) > 3 && f[3] != "None" {
			fs.reason = f[3]
		}
		fs.state = held(fs.state, fs.reason)
		// A requeued job has one record per run; the last one is current.
		res[f[0]] = fs
	}
	return res, nil
}

// status turns a final state into a provider status. A job killed by a
// signal gets exit code 128+signal, as a shell reports it, and a message
// naming the signal; the message also keeps Slurm's own state name when
// Parsl's is coarser (NODE_FAIL reads FAILED) and Slurm's reason.
func (fs finalState) status(id string) provider.JobStatus {
	st := provider.JobStatus{JobID: id, State: fs.state, ExitCode: fs.exitCode}
	var msg []string
	if fs.long != fs.state.String() {
		msg = append(msg, "Slurm state "+fs.long)
	}
	if fs.signal != 0 {
		st.ExitCode = 128 + fs.signal
		msg = append(msg, fmt.Sprintf("killed by signal %d", fs.signal))
	}
	if fs.reason != "" {
		msg = append(msg, "reason "+fs.reason)
	}
	st.Message = strings.Join(msg, "; ")
	return st
}

// status turns a live squeue row into a provider status.
func (r queueRow) status(id string) provider.JobStatus {
	st := provider.JobStatus{JobID: id, State: r.state}
	var msg []string
	if r.long != r.state.String() {
		msg = append(msg, "Slurm state "+r.long)
	}
	if r.reason != "" {
		msg = append(msg, "reason "+r.reason)
	}
	st.Message = strings.Join(msg, "; ")
	return st
}
