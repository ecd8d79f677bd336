// Command diamond runs a diamond-shaped graph: one task feeds two, which
// feed a fourth. The futures passed as arguments are the edges.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/parsl-go/parsl"
)

var (
	// Two returns 2: the top of the diamond.
	Two = parsl.Register0("diamond.two", func(ctx context.Context) (int, error) { return 2, nil })
	// Mul multiplies: the two sides and the bottom of the diamond.
	Mul = parsl.Register2("diamond.mul", func(ctx context.Context, a, b int) (int, error) { return a * b, nil })
)

func main() {
	parsl.Main()
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// run is the workflow, apart from main so that its deferred Close runs
// before log.Fatal (which skips deferred calls).
func run(ctx context.Context) (err error) {
	dfk, err := parsl.Load(ctx, parsl.Config{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dfk.Close(ctx)) }()

	top := Two.Submit(dfk)
	left := Mul.Submit(dfk, top, parsl.Val(3))  // 2·3
	right := Mul.Submit(dfk, top, parsl.Val(5)) // 2·5
	bottom := Mul.Submit(dfk, left, right)      // (2·3)(2·5)
	v, err := bottom.Get(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("(2·3)·(2·5) = %d (tasks %d, %d, %d → %d)\n", v, top.TaskID(), left.TaskID(), right.TaskID(), bottom.TaskID())
	return nil
}
