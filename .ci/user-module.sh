#!/usr/bin/env bash
# Uses this clone from a module of its own, as README's "Your own project"
# says: a scratch module outside the repository requires
# github.com/parsl-go/parsl through a replace pointing here, `go mod tidy`,
# builds and runs a small program (on threads, then on an htex worker pool,
# which re-executes the user's binary through parsl.Main), and builds the
# parsl CLI as a tool of that module. Needs only modules the repository's own
# `go mod download` fetched, plus what `go mod tidy` asks for (a few go.mod
# files); well under a minute with warm caches.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/parsl-user-module.XXXXXX")"
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
case "$work" in "$repo"/*) echo "scratch module $work is inside the repository"; exit 1 ;; esac
cd "$work"

step() { printf -- '--- %s\n' "$*"; }

step "go mod init + replace github.com/parsl-go/parsl => $repo"
go mod init example.com/myflow
go mod edit -replace "github.com/parsl-go/parsl=$repo"

cat >main.go <<'EOF'
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/parsl-go/parsl"
)

// Registered at package level, so the pools (copies of this binary) have it.
var Square = parsl.Register1("myflow.square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

func main() {
	parsl.Main()
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	dfk, err := parsl.Load(ctx, parsl.Config{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dfk.Close(ctx)) }()
	squares := make([]*parsl.Future[int], 10)
	for i := range squares {
		squares[i] = Square.Submit(dfk, parsl.Val(i))
	}
	sum := 0
	for _, f := range squares {
		v, err := f.Get(ctx)
		if err != nil {
			return err
		}
		sum += v
	}
	fmt.Printf("sum of squares 0..9 = %d\n", sum)
	return nil
}
EOF

step "go mod tidy"
go mod tidy
grep -q '^require github.com/parsl-go/parsl v0.0.0-00010101000000-000000000000$' go.mod ||
  { echo "go.mod lacks the require line go mod tidy should add:"; cat go.mod; exit 1; }

step "go build"
go build -o myflow .

want="sum of squares 0..9 = 285"
check() {
  local what=$1 out
  shift
  if ! out=$(timeout 120 "$@" 2>"$work/stderr"); then
    echo "$what failed:"; cat "$work/stderr"; exit 1
  fi
  if [ "$out" != "$want" ]; then
    echo "$what printed '$out', want '$want'"; cat "$work/stderr"; exit 1
  fi
  echo "$what: $out"
}
check "run on threads" ./myflow
check "run on an htex pool" env PARSL_CONFIG="$repo/examples/configs/htex-local.yaml" ./myflow
[ -f runinfo/001/parsl.log ] || { echo "no runinfo/001/parsl.log after two runs"; ls -R runinfo; exit 1; }

step "the parsl CLI as a tool of this module"
go mod edit -tool github.com/parsl-go/parsl/cmd/parsl
go mod tidy
help=$(go tool parsl --help)
case "$help" in *"Parsl for Go"*) ;; *) echo "go tool parsl --help printed: $help"; exit 1 ;; esac
go build -o parsl github.com/parsl-go/parsl/cmd/parsl
./parsl version
echo "user module OK"
