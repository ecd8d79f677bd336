package gridengine

import (
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parsl-go/parsl/provider"
)

// The parsers here are pure (text in, values out) so that the output of
// real Grid Engine commands, saved under testdata/, can be tested without
// a Grid Engine.

var jobIDRe = regexp.MustCompile(`^[0-9]+$`)

// parseQsub finds the job ID in the output of `qsub -terse`: the last
// non-empty line, "123", or "123.1-10:1" for an array job (a site's
// submit wrapper may print notices before it).
func parseQsub(stdout string) (string, error) {
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	id, _, _ := strings.Cut(last, ".")
	if !jobIDRe.MatchString(id) {
		return "", fmt.Errorf("qsub -terse printed no job ID: %q", stdout)
	}
	return id, nil
}

// qstatJob is one <job_list> of `qstat -xml`.
type qstatJob struct {
	Number string `xml:"JB_job_number"`
	Name   string `xml:"JB_name"`
	State  string `xml:"state"`
	Queue  string `xml:"queue_name"`
}

// qstatXML is the document `qstat -xml` prints: running jobs under
// queue_info, pending ones under job_info.
type qstatXML struct {
	XMLName xml.Name   `xml:"job_info"`
	Running []qstatJob `xml:"queue_info>job_list"`
	Pending []qstatJob `xml:"job_info>job_list"`
}

// parseQstatXML parses `qstat -xml` into the state code of each job by ID.
// An array job lists one <job_list> per task; the job keeps the first
// running one's state, since the block holds nodes while any task runs.
func parseQstatXML(out string) (map[string]string, error) {
	var doc qstatXML
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		return nil, err
	}
	res := map[string]string{}
	for _, j := range append(doc.Running, doc.Pending...) {
		id := strings.TrimSpace(j.Number)
		if !jobIDRe.MatchString(id) {
			return nil, fmt.Errorf("job_list with job number %q", j.Number)
		}
		if _, seen := res[id]; !seen {
			res[id] = strings.TrimSpace(j.State)
		}
	}
	return res, nil
}

// mapState maps a qstat state code to a provider state. Grid Engine's code
// is a string of letters (qstat(1), "state"), each a flag, so it is read
// flag by flag, most telling first, rather than looked up in a table that
// would miss combinations such as "hRwq" or "dRr":
//
//   - E (error): the job cannot start, and never will until an operator
//     clears it with `qmod -cj`; it stays in the queue holding nothing.
//     FAILED, as in Parsl, so that the executor counts a failed block
//     (its Cancel still removes the job).
//   - d (deletion in progress): still RUNNING while it holds a slot (dr, dt,
//     dRr), else PENDING; it leaves the queue soon.
//   - s, S, T (suspended by a user, a subordinate queue or a load
//     threshold): HELD, as Slurm's SUSPENDED, whether running or not.
//   - r, t (running, being transferred to its host): RUNNING; R only says
//     the job was restarted.
//   - h (hold) with q/w: HELD: a held job does not start by itself.
//   - q, w: PENDING.
//   - z (zombie, only with qstat -s z): finished; COMPLETED or FAILED is for
//     qacct to say, so it maps to Unknown here.
func mapState(code string) (provider.JobState, string) {
	has := func(f string) bool { return strings.Contains(code, f) }
	switch {
	case code == "":
		return provider.Unknown, "no state"
	case has("E"):
		return provider.Failed, "error state " + code + " (see `qstat -j ID`; the job stays queued until qdel or `qmod -cj`)"
	case has("d") && (has("r") || has("t")):
		return provider.Running, "being deleted (" + code + ")"
	case has("d"):
		return provider.Pending, "being deleted (" + code + ")"
	case has("s") || has("S") || has("T"):
		return provider.Held, "suspended (" + code + ")"
	case has("r") || has("t"):
		if code == "r" {
			return provider.Running, ""
		}
		return provider.Running, "state " + code
	case has("h"):
		return provider.Held, "on hold (" + code + ")"
	case has("q") || has("w"):
		if code == "qw" {
			return provider.Pending, ""
		}
		return provider.Pending, "state " + code
	}
	return provider.Unknown, "unknown state " + code
}

// acctRecord is what `qacct -j ID` says about a finished job.
type acctRecord struct {
	failed     int    // 0, or why the job failed (qacct(1) "failed")
	failedText string // failed's explanation, when qacct gives one
	exitStatus int
	wallclock  time.Duration
	hasWall    bool
}

// parseQacct parses `qacct -j ID`: records separated by lines of "=",
// each line "key value". A job run more than once (rescheduled) has several
// records; the last is the one that counts.
func parseQacct(out string) (acctRecord, error) {
	var recs []map[string]string
	var cur map[string]string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "====") {
			cur = map[string]string{}
			recs = append(recs, cur)
			continue
		}
		if cur == nil || strings.TrimSpace(line) == "" {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		cur[k] = strings.TrimSpace(v)
	}
	if len(recs) == 0 {
		return acctRecord{}, fmt.Errorf("no accounting record")
	}
	r := recs[len(recs)-1]
	var a acctRecord
	fv, ok := r["failed"]
	if !ok {
		return acctRecord{}, fmt.Errorf("record without failed")
	}
	// "failed 100 : assumedly after job" — a code and, sometimes, why.
	code, text, _ := strings.Cut(fv, ":")
	var err error
	if a.failed, err = strconv.Atoi(strings.TrimSpace(code)); err != nil {
		return acctRecord{}, fmt.Errorf("failed %q: %w", fv, err)
	}
	a.failedText = strings.TrimSpace(text)
	es, ok := r["exit_status"]
	if !ok {
		return acctRecord{}, fmt.Errorf("record without exit_status")
	}
	// Newer versions add the signal's name: "137 (Killed)".
	es, _, _ = strings.Cut(es, " ")
	if a.exitStatus, err = strconv.Atoi(es); err != nil {
		return acctRecord{}, fmt.Errorf("exit_status %q: %w", r["exit_status"], err)
	}
	if w, ok := r["ru_wallclock"]; ok {
		a.wallclock, a.hasWall = parseWallclock(w)
	}
	return a, nil
}

// parseWallclock reads ru_wallclock: "12s" or "12.345s" (Son of Grid
// Engine 8.1), or bare seconds "12" (older versions).
func parseWallclock(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// status turns an accounting record into a provider status. cancelled
// says this provider deleted the job; walltime is the block's h_rt.
//
// Grid Engine ends a job at its h_rt with SIGKILL: exit status 137 and,
// in Son of Grid Engine 8.1.9, failed 37 "qmaster enforced h_rt, h_cpu, or
// h_vmem limit". Neither alone names the walltime (137 is any kill, 37
// also covers memory and CPU limits), so a job killed after running for
// its whole walltime is taken to have hit it (TIMEOUT).
func (a acctRecord) status(id string, cancelled bool, walltime time.Duration) provider.JobStatus {
	st := provider.JobStatus{JobID: id, ExitCode: a.exitStatus}
	var msg []string
	switch {
	case cancelled:
		st.State = provider.Cancelled
	case (a.exitStatus == 137 || a.failed == 37) && a.hasWall && walltime > 0 && a.wallclock >= walltime:
		st.State = provider.Timeout
		msg = append(msg, fmt.Sprintf("killed after %v, at its walltime", a.wallclock))
	case a.failed != 0 || a.exitStatus != 0:
		st.State = provider.Failed
	default:
		st.State = provider.Completed
	}
	if a.exitStatus > 128 && a.exitStatus < 160 {
		msg = append(msg, fmt.Sprintf("killed by signal %d", a.exitStatus-128))
	}
	if a.failed != 0 {
		m := fmt.Sprintf("qacct failed %d", a.failed)
		if a.failedText != "" {
			m += " (" + a.failedText + ")"
		}
		msg = append(msg, m)
	}
	st.Message = strings.Join(msg, "; ")
	return st
}
