package bash

import (
	"context"
	"testing"
)

// BenchmarkRun is the cost of one short command on a shared Runner, the
// way a pool or the threads executor runs bash apps.
func BenchmarkRun(b *testing.B) {
	var r Runner
	defer r.Close()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res, err := r.Run(context.Background(), Spec{Command: "true"}); err != nil || res.ExitCode != 0 {
				b.Fatal(res, err)
			}
		}
	})
}
