// Command hello is the smallest Parsl for Go workflow: one app, a few
// tasks, their results.
package main

import (
	"context"
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
	ctx := context.Background()
	dfk, err := parsl.Load(ctx, parsl.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer dfk.Close(ctx)

	var futures []*parsl.Future[string]
	for _, n := range []string{"Ada", "Grace", "Barbara"} {
		futures = append(futures, Greet.Submit(dfk, parsl.Val(n)))
	}
	for _, f := range futures {
		msg, err := f.Get(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(msg)
	}
}
