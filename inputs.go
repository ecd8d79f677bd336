package parsl

import (
	"sync"

	"github.com/parsl-go/parsl/internal/dataflow"
)

// Inputs gathers input files into one argument of type []File: Go's form
// of Parsl's inputs=[...]. The app declares a []parsl.File parameter and
// the call passes Inputs(...) for it:
//
//	var Cat = parsl.RegisterBash2("cat", func(ctx context.Context, in []parsl.File, out parsl.File) (string, error) {
//		cmd := "cat"
//		for _, f := range in {
//			cmd += fmt.Sprintf(" %q", f.Path())
//		}
//		return cmd + fmt.Sprintf(" > %q", out.Path()), nil
//	})
//	Cat.Submit(dfk, parsl.Inputs(parsl.NewFile("https://host/a"), prev.Outputs()[0]), out, parsl.Outputs(out))
//
// Each element is a File or a future of one (a DataFuture from
// Future.Outputs, or any *Future[File]). The task depends on every future
// among them, remote files are staged in by parsl.stage_in tasks before it
// runs, and the app receives the local Files in the order given. Because
// the files travel in the task's arguments, this works on every executor
// and is part of the task's memo key.
//
// Inputs is an argument rather than a call option so that the app's
// signature says it reads files and the compiler checks the call; a Go
// app has no other place to receive them.
//
// Staging applies when Inputs is passed directly as an app argument; in
// other places (inside All, say) it is a plain gather of its elements.
func Inputs(files ...Arg[File]) Arg[[]File] {
	return &inputFiles{files: append([]Arg[File](nil), files...)}
}

// inputFiles is the Arg made by Inputs. The submit step recognises it and
// replaces it by a gather of staged files; used anywhere else it is a
// plain gather of its elements, made on first use.
type inputFiles struct {
	files []Arg[File]
	once  sync.Once
	plain *Future[[]File]
}

func (in *inputFiles) source() dataflow.Source { return in }
func (in *inputFiles) isArg(*[]File)           {}

// Dep and Value make *inputFiles a dataflow.Source; not part of the API.
func (in *inputFiles) Dep() *dataflow.Task {
	in.once.Do(func() { in.plain = All(in.files...) })
	return &in.plain.task
}

func (in *inputFiles) Value() any { return in.Dep().Value() }
