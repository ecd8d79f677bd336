package parsl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/parsl-go/parsl"
)

var (
	exAdd = parsl.Register2("example.add", func(ctx context.Context, a, b int) (int, error) {
		return a + b, nil
	})
	exSquare = parsl.Register1("example.square", func(ctx context.Context, x int) (int, error) {
		return x * x, nil
	})
	exSum = parsl.Register1("example.sum", func(ctx context.Context, xs []int) (int, error) {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s, nil
	})
	exDiv = parsl.Register2("example.div", func(ctx context.Context, a, b int) (int, error) {
		if b == 0 {
			return 0, errors.New("division by zero")
		}
		return a / b, nil
	})
	exEcho = parsl.RegisterBash1("example.echo", func(ctx context.Context, msg string) (string, error) {
		return "echo " + msg, nil
	})
	exFanOut = parsl.RegisterJoin1("example.fanout", func(ctx context.Context, d *parsl.DFK, n int) (*parsl.Future[[]int], error) {
		fs := make([]parsl.Arg[int], n)
		for i := range fs {
			fs[i] = exSquare.Submit(d, parsl.Val(i))
		}
		return parsl.All(fs...), nil
	})
)

func exampleDFK() (*parsl.DFK, func()) {
	dir, err := os.MkdirTemp("", "parsl-example")
	if err != nil {
		panic(err)
	}
	dfk, err := parsl.Load(context.Background(), parsl.Config{RunDir: dir})
	if err != nil {
		panic(err)
	}
	return dfk, func() {
		dfk.Close(context.Background())
		os.RemoveAll(dir)
	}
}

// Futures passed as arguments are dependencies: the second task starts when
// the first is done.
func Example() {
	ctx := context.Background()
	runDir, _ := os.MkdirTemp("", "runinfo")
	defer os.RemoveAll(runDir)
	dfk, err := parsl.Load(ctx, parsl.Config{RunDir: runDir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dfk.Close(ctx)

	x := exAdd.Submit(dfk, parsl.Val(1), parsl.Val(2))
	y := exAdd.Submit(dfk, x, parsl.Val(10))
	v, err := y.Get(ctx)
	fmt.Println(v, err)
	// Output: 13 <nil>
}

// All gathers many futures into one argument: fan out, then fan in.
func ExampleAll() {
	dfk, done := exampleDFK()
	defer done()
	ctx := context.Background()

	squares := make([]parsl.Arg[int], 10)
	for i := range squares {
		squares[i] = exSquare.Submit(dfk, parsl.Val(i))
	}
	total, err := exSum.Submit(dfk, parsl.All(squares...)).Get(ctx)
	fmt.Println(total, err)
	// Output: 285 <nil>
}

// A failed task fails the tasks that depend on it with a *DependencyError
// that names it; errors.As reaches the root cause.
func ExampleDependencyError() {
	dfk, done := exampleDFK()
	defer done()
	ctx := context.Background()

	bad := exDiv.Submit(dfk, parsl.Val(1), parsl.Val(0))
	after := exAdd.Submit(dfk, bad, parsl.Val(1))
	_, err := after.Get(ctx)

	var dep *parsl.DependencyError
	var app *parsl.AppError
	fmt.Println(errors.As(err, &dep), dep.TaskIDs(), errors.As(err, &app), app.Message)
	// Output: true [0] true division by zero
}

// A bash app returns a command line; the task's result is its exit code.
func ExampleRegisterBash1() {
	dfk, done := exampleDFK()
	defer done()
	ctx := context.Background()

	code, err := exEcho.Submit(dfk, parsl.Val("hello"), parsl.Walltime(10*time.Second)).Get(ctx)
	fmt.Println(code, err)
	// Output: 0 <nil>
}

// A join app runs on the driver and returns a future of the tasks it
// submitted.
func ExampleRegisterJoin1() {
	dfk, done := exampleDFK()
	defer done()

	v, err := exFanOut.Submit(dfk, parsl.Val(4)).Get(context.Background())
	fmt.Println(v, err)
	// Output: [0 1 4 9] <nil>
}

// AsCompleted yields futures as they finish.
func ExampleAsCompleted() {
	dfk, done := exampleDFK()
	defer done()
	ctx := context.Background()

	var fs []*parsl.Future[int]
	for i := 1; i <= 3; i++ {
		fs = append(fs, exSquare.Submit(dfk, parsl.Val(i)))
	}
	sum := 0
	for f := range parsl.AsCompleted(ctx, fs...) {
		v, _ := f.Get(ctx)
		sum += v
	}
	fmt.Println(sum)
	// Output: 14
}

// A Promise is a future the program completes itself.
func ExampleNewPromise() {
	dfk, done := exampleDFK()
	defer done()
	ctx := context.Background()

	p := parsl.NewPromise[int]()
	f := exSquare.Submit(dfk, p.Future())
	fmt.Println(f.State())
	p.Resolve(7)
	v, _ := f.Get(ctx)
	fmt.Println(v)
	// Output:
	// pending
	// 49
}
