// Package procstat reads what Linux's /proc says about processes: CPU
// time, memory, threads, I/O and context switches of one process or of a
// process tree. Worker pools use it to sample the resources of running
// tasks for monitoring.
//
// The Parse functions are pure and take the text of one /proc file, so
// they are tested on captured files; Reader adds the file access, with a
// configurable root so that a captured tree can stand in for /proc.
package procstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Stat is the part of /proc/<pid>/stat that monitoring uses.
type Stat struct {
	PID  int
	Comm string
	// State is the one-letter state (R, S, D, Z, T, ...).
	State byte
	PPID  int
	PGID  int
	// UTime and STime are user and system CPU time in clock ticks.
	UTime, STime uint64
	// CUTime and CSTime are the CPU time of the children this process
	// has waited for (and of theirs), in clock ticks: what its tree has
	// used in processes that no longer exist.
	CUTime, CSTime uint64
	NumThreads     int
	// StartTime is when the process started, in clock ticks after boot;
	// with PID it identifies a process across PID reuse.
	StartTime uint64
	// VSize is the virtual memory size in bytes; RSS the resident set in
	// pages.
	VSize uint64
	RSS   int64
	// Processor is the CPU the process last ran on.
	Processor int
}

// ParseError is a /proc file whose text is not what the kernel writes.
type ParseError struct {
	File   string // "stat", "status", "io", ...
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	return "procstat: cannot parse " + e.File + ": " + e.Reason
}

// ParseStat parses the text of /proc/<pid>/stat. The command name is in
// parentheses and may itself contain spaces and parentheses, so the fields
// after it are found from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	var s Stat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open <= 0 || closing < open {
		return s, &ParseError{File: "stat", Reason: "no command name in parentheses"}
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return s, &ParseError{File: "stat", Reason: "bad pid: " + err.Error()}
	}
	s.PID = pid
	s.Comm = string(b[open+1 : closing])
	// Field numbers follow proc(5): 3 is the state, right after the name.
	f := bytes.Fields(b[closing+1:])
	const last = 39 // processor
	if len(f) < last-2 {
		return s, &ParseError{File: "stat", Reason: fmt.Sprintf("%d fields after the command name, want at least %d", len(f), last-2)}
	}
	field := func(n int) []byte { return f[n-3] }
	if len(field(3)) != 1 {
		return s, &ParseError{File: "stat", Reason: fmt.Sprintf("state %q is not one letter", field(3))}
	}
	s.State = field(3)[0]
	var errs []error
	num := func(n int) int64 {
		v, err := strconv.ParseInt(string(field(n)), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %d: %w", n, err))
		}
		return v
	}
	unum := func(n int) uint64 {
		v, err := strconv.ParseUint(string(field(n)), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %d: %w", n, err))
		}
		return v
	}
	s.PPID = int(num(4))
	s.PGID = int(num(5))
	s.UTime = unum(14)
	s.STime = unum(15)
	s.CUTime = unum(16)
	s.CSTime = unum(17)
	s.NumThreads = int(num(20))
	s.StartTime = unum(22)
	s.VSize = unum(23)
	s.RSS = num(24)
	s.Processor = int(num(39))
	if len(errs) > 0 {
		return Stat{}, &ParseError{File: "stat", Reason: errors.Join(errs...).Error()}
	}
	return s, nil
}

// Status is the part of /proc/<pid>/status that /proc/<pid>/stat lacks.
type Status struct {
	VoluntaryCtxtSwitches    uint64
	NonvoluntaryCtxtSwitches uint64
}

// ParseStatus parses the text of /proc/<pid>/status. Missing lines leave
// their fields zero: older kernels lack some of them.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	err := eachKV(b, ':', func(k, v []byte) error {
		var dst *uint64
		switch string(k) {
		case "voluntary_ctxt_switches":
			dst = &s.VoluntaryCtxtSwitches
		case "nonvoluntary_ctxt_switches":
			dst = &s.NonvoluntaryCtxtSwitches
		default:
			return nil
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return &ParseError{File: "status", Reason: fmt.Sprintf("%s: %v", k, err)}
		}
		*dst = n
		return nil
	})
	return s, err
}

// IO is /proc/<pid>/io: bytes passed to read and write calls (RChar,
// WChar; what psutil calls read_chars and write_chars, and what Parsl's
// monitoring records as disk read and write) and bytes that reached the
// storage layer (ReadBytes, WriteBytes).
type IO struct {
	RChar, WChar          uint64
	ReadBytes, WriteBytes uint64
}

// ParseIO parses the text of /proc/<pid>/io.
func ParseIO(b []byte) (IO, error) {
	var io IO
	seen := 0
	err := eachKV(b, ':', func(k, v []byte) error {
		var dst *uint64
		switch string(k) {
		case "rchar":
			dst = &io.RChar
		case "wchar":
			dst = &io.WChar
		case "read_bytes":
			dst = &io.ReadBytes
		case "write_bytes":
			dst = &io.WriteBytes
		default:
			return nil
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return &ParseError{File: "io", Reason: fmt.Sprintf("%s: %v", k, err)}
		}
		*dst = n
		seen++
		return nil
	})
	if err == nil && seen == 0 {
		err = &ParseError{File: "io", Reason: "no rchar, wchar, read_bytes or write_bytes line"}
	}
	return io, err
}

// ParseMemTotal returns MemTotal from the text of /proc/meminfo, in bytes.
func ParseMemTotal(b []byte) (int64, error) {
	var total int64 = -1
	err := eachKV(b, ':', func(k, v []byte) error {
		if string(k) != "MemTotal" {
			return nil
		}
		num, unit, _ := bytes.Cut(v, []byte(" "))
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return &ParseError{File: "meminfo", Reason: "MemTotal: " + err.Error()}
		}
		switch string(bytes.TrimSpace(unit)) {
		case "kB":
			n *= 1024
		case "":
		default:
			return &ParseError{File: "meminfo", Reason: fmt.Sprintf("MemTotal in unknown unit %q", unit)}
		}
		total = n
		return nil
	})
	if err == nil && total < 0 {
		err = &ParseError{File: "meminfo", Reason: "no MemTotal line"}
	}
	return total, err
}

// ParseChildren parses /proc/<pid>/task/<tid>/children: PIDs separated by
// spaces.
func ParseChildren(b []byte) ([]int, error) {
	f := bytes.Fields(b)
	out := make([]int, 0, len(f))
	for _, x := range f {
		n, err := strconv.Atoi(string(x))
		if err != nil {
			return nil, &ParseError{File: "children", Reason: err.Error()}
		}
		out = append(out, n)
	}
	return out, nil
}

// LookupEnv finds key in the text of /proc/<pid>/environ (NUL-separated
// KEY=VALUE entries), the environment the process started with.
func LookupEnv(environ []byte, key string) (string, bool) {
	for len(environ) > 0 {
		var entry []byte
		entry, environ, _ = bytes.Cut(environ, []byte{0})
		if k, v, ok := bytes.Cut(entry, []byte("=")); ok && string(k) == key {
			return string(v), true
		}
	}
	return "", false
}

// atClkTck is the auxiliary vector key of the clock tick rate.
const atClkTck = 17

// ParseAuxvClockTicks returns AT_CLKTCK from the text of /proc/self/auxv
// (pairs of native-endian words on a 64-bit system): the unit of the CPU
// times in stat, which Go cannot get from sysconf without cgo.
func ParseAuxvClockTicks(b []byte) (int, bool) {
	for ; len(b) >= 16; b = b[16:] {
		k, v := binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
		if k == 0 {
			break
		}
		if k == atClkTck && v > 0 && v < 1<<20 {
			return int(v), true
		}
	}
	return 0, false
}

// eachKV calls f with the trimmed key and value of every "key<sep> value"
// line, stopping at f's first error.
func eachKV(b []byte, sep byte, f func(k, v []byte) error) error {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		k, v, ok := bytes.Cut(line, []byte{sep})
		if !ok {
			continue
		}
		if err := f(bytes.TrimSpace(k), bytes.TrimSpace(v)); err != nil {
			return err
		}
	}
	return nil
}

// Process is one process as read from /proc.
type Process struct {
	Stat
	Status
	IO IO
	// IOKnown is false when /proc/<pid>/io could not be read (another
	// user's process, or a kernel without task I/O accounting).
	IOKnown bool
}

// Reader reads processes from a /proc file system. The zero value is not
// usable; use New.
type Reader struct {
	root  string
	ticks float64 // clock ticks per second
	page  int64   // bytes per page
}

// DefaultClockTicks is the tick rate assumed when /proc/self/auxv does not
// say: USER_HZ is 100 on every Linux architecture Go supports.
const DefaultClockTicks = 100

// New returns a Reader of the /proc file system at root ("" is /proc).
func New(root string) *Reader {
	if root == "" {
		root = "/proc"
	}
	r := &Reader{root: root, ticks: DefaultClockTicks, page: int64(os.Getpagesize())}
	if b, err := os.ReadFile(filepath.Join(root, "self", "auxv")); err == nil {
		if t, ok := ParseAuxvClockTicks(b); ok {
			r.ticks = float64(t)
		}
	}
	return r
}

// ClockTicks returns the clock ticks per second the Reader converts CPU
// times with.
func (r *Reader) ClockTicks() float64 { return r.ticks }

func (r *Reader) path(pid int, parts ...string) string {
	return filepath.Join(append([]string{r.root, strconv.Itoa(pid)}, parts...)...)
}

// State returns the one-letter state of process pid from its stat file (R,
// S, D, Z for a zombie, T or t for stopped). A process that has gone gives
// an error matching os.ErrNotExist.
func (r *Reader) State(pid int) (byte, error) {
	b, err := os.ReadFile(r.path(pid, "stat"))
	if err != nil {
		return 0, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return 0, err
	}
	return st.State, nil
}

// Process reads stat, status and (when readable) io of one process. A
// process that has exited gives an error matching os.ErrNotExist.
func (r *Reader) Process(pid int) (Process, error) {
	var p Process
	b, err := os.ReadFile(r.path(pid, "stat"))
	if err != nil {
		return p, err
	}
	if p.Stat, err = ParseStat(b); err != nil {
		return p, err
	}
	if b, err = os.ReadFile(r.path(pid, "status")); err != nil {
		return p, err
	}
	if p.Status, err = ParseStatus(b); err != nil {
		return p, err
	}
	if b, err := os.ReadFile(r.path(pid, "io")); err == nil {
		if io, err := ParseIO(b); err == nil {
			p.IO, p.IOKnown = io, true
		}
	}
	return p, nil
}

// Children returns the PIDs of pid's child processes, from the children
// file of each of its threads (Linux 3.5 with CONFIG_PROC_CHILDREN, which
// distribution kernels have). A process that has exited has none.
func (r *Reader) Children(pid int) ([]int, error) {
	tasks, err := os.ReadDir(r.path(pid, "task"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(r.path(pid, "task"), t.Name(), "children"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread ended, or no CONFIG_PROC_CHILDREN
			}
			return nil, err
		}
		kids, err := ParseChildren(b)
		if err != nil {
			return nil, err
		}
		out = append(out, kids...)
	}
	return out, nil
}

// Tree reads pid and its descendants, root first. Processes that exit
// while the tree is read are left out; a root that has exited gives an
// error matching os.ErrNotExist.
func (r *Reader) Tree(pid int) ([]Process, error) {
	root, err := r.Process(pid)
	if err != nil {
		return nil, err
	}
	out := []Process{root}
	seen := map[int]bool{pid: true}
	for i := 0; i < len(out); i++ {
		kids, err := r.Children(out[i].PID)
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			if seen[k] {
				continue
			}
			seen[k] = true
			p, err := r.Process(k)
			if err != nil {
				continue // exited since its parent listed it
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Environ returns the raw /proc/<pid>/environ of a process.
func (r *Reader) Environ(pid int) ([]byte, error) {
	return os.ReadFile(r.path(pid, "environ"))
}

// MemTotal returns the machine's memory in bytes, from meminfo.
func (r *Reader) MemTotal() (int64, error) {
	b, err := os.ReadFile(filepath.Join(r.root, "meminfo"))
	if err != nil {
		return 0, err
	}
	return ParseMemTotal(b)
}

// Usage is the resource use of a process tree: sums over its processes,
// with the root's identity, state and CPU.
type Usage struct {
	// PID, State and CPU are the root's.
	PID   int
	State byte
	CPU   int
	// Processes counts the tree (1 = the root alone).
	Processes int
	Threads   int
	// UserSeconds and SystemSeconds are the CPU time used so far by the
	// processes of the tree.
	UserSeconds, SystemSeconds float64
	// ReapedUserSeconds and ReapedSystemSeconds are the CPU time of
	// processes that have exited and been waited for by a process of the
	// tree: with them, a tree whose short-lived children come and go
	// keeps the CPU time it used.
	ReapedUserSeconds, ReapedSystemSeconds float64
	// RSS and VMS are resident and virtual memory in bytes.
	RSS, VMS int64
	// ReadChars and WriteChars are I/O bytes (rchar, wchar); IOKnown is
	// false when no process's io file could be read.
	ReadChars, WriteChars int64
	IOKnown               bool
	CtxVoluntary          int64
	CtxInvoluntary        int64
}

// Sum adds up the resource use of ps; ps[0] is the root.
func (r *Reader) Sum(ps []Process) Usage {
	var u Usage
	if len(ps) == 0 {
		return u
	}
	u.PID, u.State, u.CPU = ps[0].PID, ps[0].State, ps[0].Processor
	u.Processes = len(ps)
	var ut, st, cut, cst uint64
	for i := range ps {
		p := &ps[i]
		ut += p.UTime
		st += p.STime
		cut += p.CUTime
		cst += p.CSTime
		u.Threads += p.NumThreads
		u.RSS += p.Stat.RSS * r.page
		u.VMS += int64(p.VSize)
		u.CtxVoluntary += int64(p.VoluntaryCtxtSwitches)
		u.CtxInvoluntary += int64(p.NonvoluntaryCtxtSwitches)
		if p.IOKnown {
			u.IOKnown = true
			u.ReadChars += int64(p.IO.RChar)
			u.WriteChars += int64(p.IO.WChar)
		}
	}
	u.UserSeconds = float64(ut) / r.ticks
	u.SystemSeconds = float64(st) / r.ticks
	u.ReapedUserSeconds = float64(cut) / r.ticks
	u.ReapedSystemSeconds = float64(cst) / r.ticks
	return u
}
