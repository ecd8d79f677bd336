package workerpool

import (
	"testing"

	"github.com/parsl-go/parsl/internal/wire"
)

func TestWorkerCount(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   wire.PoolConfig
		cores float64
		mem   float64
		want  int
	}{
		{"max only", wire.PoolConfig{Workers: 3}, 16, 1000, 3},
		{"unbounded: one per core", wire.PoolConfig{}, 6, 1000, 6},
		{"cores bound", wire.PoolConfig{Workers: 100, CoresPerWorker: 2}, 9, 1000, 4},
		{"oversubscribed cores", wire.PoolConfig{CoresPerWorker: 0.5}, 4, 1000, 8},
		{"memory bound", wire.PoolConfig{Workers: 100, MemPerWorkerMB: 300}, 16, 1000, 3},
		{"accelerators bound", wire.PoolConfig{Workers: 100, Accelerators: []string{"0", "1"}}, 16, 1000, 2},
		{"all bound, smallest wins", wire.PoolConfig{Workers: 5, CoresPerWorker: 1, MemPerWorkerMB: 250, Accelerators: []string{"a", "b", "c"}}, 4, 1000, 3},
		{"at least one", wire.PoolConfig{Workers: 4, CoresPerWorker: 8}, 2, 1000, 1},
		{"at least one by memory", wire.PoolConfig{MemPerWorkerMB: 4000}, 2, 1000, 1},
	} {
		if got := workerCount(c.cfg, c.cores, c.mem); got != c.want {
			t.Errorf("%s: %d workers, want %d", c.name, got, c.want)
		}
	}
}

func TestNodeResources(t *testing.T) {
	t.Setenv("PARSL_CORES", "3")
	t.Setenv("PARSL_MEMORY_GB", "2")
	if c := nodeCores(); c != 3 {
		t.Errorf("cores from PARSL_CORES: %v", c)
	}
	if m := nodeMemoryMB(); m != 2048 {
		t.Errorf("memory from PARSL_MEMORY_GB: %v", m)
	}
	t.Setenv("PARSL_CORES", "")
	t.Setenv("PARSL_MEMORY_GB", "")
	if c := nodeCores(); c < 1 {
		t.Errorf("CPU count: %v", c)
	}
	if m := nodeMemoryMB(); m <= 0 {
		t.Errorf("MemAvailable: %v", m)
	}
}
