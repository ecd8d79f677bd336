package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// machineInfo describes where a measurement ran.
type machineInfo struct {
	Cores       int    `json:"cores"`
	MemoryBytes int64  `json:"memory_bytes"` // MemTotal from /proc/meminfo; 0 if unknown
	CPUModel    string `json:"cpu_model,omitempty"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
}

func readMachine() machineInfo {
	return machineInfo{
		Cores:       runtime.NumCPU(),
		MemoryBytes: memTotal("/proc/meminfo"),
		CPUModel:    cpuModel("/proc/cpuinfo"),
		GoVersion:   runtime.Version(),
		OS:          runtime.GOOS,
		Arch:        runtime.GOARCH,
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
	}
}

// memTotal reads "MemTotal: 24576000 kB" from a meminfo file.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(fields) > 1 && strings.EqualFold(fields[1], "kB") {
			n *= 1024
		}
		return n
	}
	return 0
}

// cpuModel reads the first "model name" line of a cpuinfo file.
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
