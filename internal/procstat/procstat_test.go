package procstat

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The files under testdata were captured on Linux 6.x: testdata/proc is a
// bash process (10367) running `sleep 30 & "./sl) (x y" 30 & wait` with
// PARSL_TASK_ID=7 and PARSL_TRY_ID=1, and *-busy are a bash loop that had
// used 1.42 s of CPU; stat-reaped is a process whose waited-for children
// used 0.46 s.

func readTestdata(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"testdata"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		file string
		want Stat
	}{
		{"proc/10367/stat", Stat{PID: 10367, Comm: "bash", State: 'S', PPID: 1, PGID: 10367, NumThreads: 1,
			StartTime: 33705, VSize: 4464640, RSS: 743, Processor: 1}},
		// A command name with spaces and parentheses.
		{"proc/10370/stat", Stat{PID: 10370, Comm: "sl) (x y", State: 'S', PPID: 10367, PGID: 10367, NumThreads: 1,
			StartTime: 33706, VSize: 2990080, RSS: 390, Processor: 1}},
		{"stat-busy", Stat{PID: 10508, Comm: "bash", State: 'R', PPID: 10506, PGID: 10506, UTime: 142, NumThreads: 1,
			StartTime: 35251, VSize: 4464640, RSS: 763, Processor: 1}},
		// bash -c 'timeout 0.5 sh -c "while :; do :; done"; sleep 5' after
		// bash exec'd sleep: the loop's CPU is in the waited-for children.
		{"stat-reaped", Stat{PID: 16834, Comm: "sleep", State: 'S', PPID: 16831, PGID: 16831, CUTime: 46, NumThreads: 1,
			StartTime: 223604, VSize: 2990080, RSS: 380, Processor: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseStat(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatRejects(t *testing.T) {
	good := string(readTestdata(t, "stat-busy"))
	tests := map[string]string{
		"empty":          "",
		"no parentheses": "12 bash R 1 2 3",
		"bad pid":        strings.Replace(good, "10508", "x", 1),
		"short":          good[:80],
		"bad number":     strings.Replace(good, " 142 ", " 1x2 ", 1),
		"long state":     strings.Replace(good, ") R ", ") RR ", 1),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseStat([]byte(in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *ParseError", err)
			}
		})
	}
}

func TestParseStatusIO(t *testing.T) {
	st, err := ParseStatus(readTestdata(t, "status-busy"))
	if err != nil {
		t.Fatal(err)
	}
	if st != (Status{VoluntaryCtxtSwitches: 0, NonvoluntaryCtxtSwitches: 553}) {
		t.Errorf("status %+v", st)
	}
	st, err = ParseStatus(readTestdata(t, "proc/10370/status"))
	if err != nil || st != (Status{VoluntaryCtxtSwitches: 1}) {
		t.Errorf("status %+v, %v", st, err)
	}
	io, err := ParseIO(readTestdata(t, "proc/10370/io"))
	if err != nil || io != (IO{RChar: 6976}) {
		t.Errorf("io %+v, %v", io, err)
	}
	for name, in := range map[string]string{"empty": "", "bad": "rchar: x\n"} {
		if _, err := ParseIO([]byte(in)); err == nil {
			t.Errorf("ParseIO(%s) accepted %q", name, in)
		}
	}
	if _, err := ParseStatus([]byte("voluntary_ctxt_switches:\t-1\n")); err == nil {
		t.Error("ParseStatus accepted a negative count")
	}
}

func TestParseMeminfoChildrenEnvAuxv(t *testing.T) {
	n, err := ParseMemTotal(readTestdata(t, "proc/meminfo"))
	if err != nil || n != 24683656*1024 {
		t.Errorf("MemTotal %d, %v", n, err)
	}
	if _, err := ParseMemTotal([]byte("MemFree: 1 kB\n")); err == nil {
		t.Error("meminfo without MemTotal accepted")
	}
	kids, err := ParseChildren(readTestdata(t, "proc/10367/task/10367/children"))
	if err != nil || !slices.Equal(kids, []int{10369, 10370}) {
		t.Errorf("children %v, %v", kids, err)
	}
	env := readTestdata(t, "proc/10367/environ")
	if v, ok := LookupEnv(env, "PARSL_TASK_ID"); !ok || v != "7" {
		t.Errorf("PARSL_TASK_ID = %q, %v", v, ok)
	}
	if _, ok := LookupEnv(env, "PARSL_TASK"); ok {
		t.Error("a prefix of a key matched")
	}
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		if tk, ok := ParseAuxvClockTicks(readTestdata(t, "proc/auxv-self")); !ok || tk != 100 {
			t.Errorf("AT_CLKTCK %d, %v", tk, ok)
		}
	}
}

// TestReaderTree reads the captured tree through the Reader, as a pool
// reads a bash task's processes.
func TestReaderTree(t *testing.T) {
	r := New("testdata/proc")
	ps, err := r.Tree(10367)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range ps {
		pids = append(pids, p.PID)
	}
	if !slices.Equal(pids, []int{10367, 10369, 10370}) {
		t.Fatalf("tree %v", pids)
	}
	u := r.Sum(ps)
	page := int64(os.Getpagesize())
	want := Usage{PID: 10367, State: 'S', CPU: 1, Processes: 3, Threads: 3,
		RSS: (743 + 412 + 390) * page, VMS: 4464640 + 2*2990080, IOKnown: true,
		ReadChars: u.ReadChars, WriteChars: u.WriteChars, CtxVoluntary: u.CtxVoluntary, CtxInvoluntary: u.CtxInvoluntary}
	if u != want {
		t.Errorf("usage %+v\nwant  %+v", u, want)
	}
	if u.ReadChars < 3*6976 {
		t.Errorf("read chars %d: the three processes read at least 6976 each", u.ReadChars)
	}
	if _, err := r.Tree(999999); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tree of a missing process: %v, want ErrNotExist", err)
	}
	if n, err := r.MemTotal(); err != nil || n <= 0 {
		t.Errorf("MemTotal %d, %v", n, err)
	}
}

// TestLiveSelf reads this test process from the real /proc.
func TestLiveSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux /proc")
	}
	r := New("")
	p, err := r.Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != os.Getpid() || p.PPID != os.Getppid() || p.NumThreads < 1 || p.RSS <= 0 || p.VSize == 0 {
		t.Errorf("self %+v", p)
	}
	// Burn a little CPU so that user time is certainly above zero.
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i ^ x
	}
	_ = x
	ps, err := r.Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	u := r.Sum(ps)
	if u.RSS <= 0 || u.UserSeconds+u.SystemSeconds <= 0 || u.Threads < 1 {
		t.Errorf("usage %+v", u)
	}
	if r.ClockTicks() <= 0 {
		t.Errorf("clock ticks %v", r.ClockTicks())
	}
	if n, err := r.MemTotal(); err != nil || n <= 0 {
		t.Errorf("MemTotal %d, %v", n, err)
	}
}

// FuzzParse feeds arbitrary text to every parser: none may panic, and
// ParseStat's accepted values must be consistent.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"stat-busy", "status-busy", "io-busy", "proc/meminfo", "proc/10370/stat", "proc/10367/environ"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("1 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseStat(b); err == nil && s.State == 0 {
			t.Fatalf("accepted stat with no state: %+v", s)
		}
		_, _ = ParseStatus(b)
		_, _ = ParseIO(b)
		_, _ = ParseMemTotal(b)
		_, _ = ParseChildren(b)
		_, _ = LookupEnv(b, "A")
		_, _ = ParseAuxvClockTicks(b)
	})
}

// BenchmarkProcessSelf is the cost of one reading of a process (stat,
// status and io), which a pool pays at most once per 10 ms for Go tasks
// and once per interval per bash task.
func BenchmarkProcessSelf(b *testing.B) {
	r := New("")
	pid := os.Getpid()
	for b.Loop() {
		if _, err := r.Process(pid); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReaderState(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	r := New("")
	st, err := r.State(os.Getpid())
	if err != nil || (st != 'R' && st != 'S') {
		t.Fatalf("State of this process = %q, %v; want R or S", st, err)
	}
	if _, err := r.State(1 << 30); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("State of no process: %v; want os.ErrNotExist", err)
	}
}
