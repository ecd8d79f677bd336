package htex

import (
	"testing"

	"github.com/parsl-go/parsl/provider/local"
	"github.com/parsl-go/parsl/provider/slurm"
)

// TestNodesPerBlockFromProvider: an unset NodesPerBlock is read from a
// provider that knows it, so the strategy counts the slots a block really
// has; an explicit value wins, and providers that don't say give 1.
func TestNodesPerBlockFromProvider(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want int
	}{
		{"slurm says 4", Options{Provider: slurm.New(slurm.Options{NodesPerBlock: 4})}, 4},
		{"explicit wins", Options{Provider: slurm.New(slurm.Options{NodesPerBlock: 4}), NodesPerBlock: 2}, 2},
		{"local has one", Options{Provider: local.New(local.Options{})}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(tc.opts)
			if e.opts.NodesPerBlock != tc.want {
				t.Errorf("NodesPerBlock = %d, want %d", e.opts.NodesPerBlock, tc.want)
			}
		})
	}
}
