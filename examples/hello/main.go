// Command hello is the smallest Parsl for Go workflow: one app, a few
// tasks, their results.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/parsl-go/parsl"
)

// Greet is an app: calling Greet.Submit returns a future at once.
var Greet = parsl.Register1("hello.greet", func(ctx context.Context, name string) (string, error) {
	return "Hello, " + name + "!", nil
})

func main() {
	parsl.Main()
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// run is the workflow. It is apart from main so that its deferred Close
// runs before log.Fatal, which skips deferred calls: a failed task still
// leaves a closed run (checkpoint written, monitoring marked ended).
func run(ctx context.Context) (err error) {
	dfk, err := parsl.Load(ctx, parsl.Config{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dfk.Close(ctx)) }()

	var futures []*parsl.Future[string]
	for _, n := range []string{"Ada", "Grace", "Barbara"} {
		futures = append(futures, Greet.Submit(dfk, parsl.Val(n)))
	}
	for _, f := range futures {
		msg, err := f.Get(ctx)
		if err != nil {
			return err
		}
		fmt.Println(msg)
	}
	return nil
}
