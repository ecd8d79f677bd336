package kubernetes

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

// BenchmarkStatus measures one Status call over n running pods of this
// provider (one List on the fake clientset, then the mapping), per pod.
func BenchmarkStatus(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			client := fake.NewClientset()
			p, err := New(Options{Image: "i"}, client)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			ids := make([]string, n)
			for i := range ids {
				if ids[i], err = p.Submit(ctx, []string{"/app/prog"}, nil, fmt.Sprint("b", i), "/dev/null", "/dev/null"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Status(ctx, ids); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pod")
		})
	}
}
