package parsl_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeCommand is one command line of a ```sh block of README.md.
type readmeCommand struct {
	block int    // index of its block
	line  string // as written, without its trailing comment
	env   []string
	argv  []string
	shell bool // has shell syntax: run with bash -c
}

// readmeBlocks returns the commands of every ```sh block of README.md and
// the first ```go block that is a main package.
func readmeBlocks(t *testing.T) (blocks [][]readmeCommand, mainGo string) {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if fence != "```sh" && fence != "```go" {
			continue
		}
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		if fence == "```go" {
			if mainGo == "" && strings.HasPrefix(strings.Join(body, "\n"), "package main") {
				mainGo = strings.Join(body, "\n") + "\n"
			}
			continue
		}
		var cmds []readmeCommand
		for j := 0; j < len(body); j++ {
			l := body[j]
			for strings.HasSuffix(l, "\\") && j+1 < len(body) {
				j++
				l = strings.TrimSuffix(l, "\\") + " " + body[j]
			}
			c, ok := parseCommand(l)
			if ok {
				c.block = len(blocks)
				cmds = append(cmds, c)
			}
		}
		blocks = append(blocks, cmds)
	}
	return blocks, mainGo
}

var envAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// parseCommand splits a README line into words the way the shell would for
// the simple commands the README has; a line with pipes, redirections,
// substitutions or lists is kept whole for bash.
func parseCommand(l string) (readmeCommand, bool) {
	var words []string
	var cur strings.Builder
	inWord, shell := false, false
	quote := byte(0)
	end := len(l)
	for i := 0; i < len(l); i++ {
		ch := l[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '#' && !inWord:
			end = i
			i = len(l)
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			if strings.IndexByte("|&;<>$`()*?", ch) >= 0 {
				shell = true
			}
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	c := readmeCommand{line: strings.TrimSpace(l[:end]), shell: shell}
	if c.line == "" {
		return c, false
	}
	for len(words) > 0 && envAssign.MatchString(words[0]) {
		c.env = append(c.env, words[0])
		words = words[1:]
	}
	c.argv = words
	return c, len(words) > 0 || shell
}

// TestReadmeCommands runs the commands of README.md's shell blocks, so that
// the README cannot go stale: a renamed example, flag or file fails here.
// Commands run in a scratch directory that links to the clone's files, so
// runinfo/ and binaries land there; go run and go build compile in the
// clone (warm build cache) and run the program in the scratch directory.
// Skipped: go test ./... and .ci/run (they run this test), go generate
// (writes into the clone; CI checks app_gen.go), Slurm unless
// PARSL_TEST_SLURM=1, and commands that need the published module. Other
// go test commands are checked with go list (go test ./... runs them).
// parsl visualize is started, asked for its first page, and stopped with
// SIGINT, as a user's Ctrl-C.
func TestReadmeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands; skipped under -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	repo, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	blocks, mainGo := readmeBlocks(t)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```sh block")
	}
	work := t.TempDir()
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// Not go.mod: a go command run in the scratch directory must not
		// edit the clone's module.
		if n := e.Name(); n != "runinfo" && n != ".git" && n != "go.mod" && n != "go.sum" {
			if err := os.Symlink(filepath.Join(repo, n), filepath.Join(work, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := &readmeRunner{t: t, repo: repo, work: work, gobin: filepath.Join(work, ".gobin"), mainGo: mainGo}
	ran := 0
	for _, cmds := range blocks {
		dir := work
		// A block that starts with go mod init is a user's own project; a
		// later block of go mod, go get or go tool commands continues it.
		var first []string
		if len(cmds) > 0 {
			first = cmds[0].argv
		}
		isGo := func(sub string) bool { return len(first) >= 2 && first[0] == "go" && first[1] == sub }
		userModule := isGo("mod") && len(first) >= 3 && first[2] == "init"
		if userModule {
			dir = r.userModuleDir(first)
		} else if r.userModule != "" && (isGo("mod") || isGo("get") || isGo("tool")) {
			userModule, dir = true, r.userModule
		}
		for _, c := range cmds {
			if why := r.skip(c, userModule); why != "" {
				t.Logf("skip %q: %s", c.line, why)
				continue
			}
			t.Logf("run %q", c.line)
			r.run(c, dir, userModule)
			ran++
		}
	}
	if ran == 0 {
		t.Fatal("no README command ran")
	}
}

type readmeRunner struct {
	t                 *testing.T
	repo, work, gobin string
	mainGo            string
	userModule        string
}

// userModuleDir makes the directory of a block that starts with go mod
// init: a user's own project, with the README's example as main.go.
func (r *readmeRunner) userModuleDir(initArgv []string) string {
	name := "myflow"
	if len(initArgv) > 3 {
		name = filepath.Base(initArgv[3])
	}
	dir := filepath.Join(r.work, "user-"+name)
	if r.userModule == dir {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	if r.mainGo == "" {
		r.t.Fatal("README.md has a go mod init block but no ```go block with package main to put in the module")
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(r.mainGo), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.userModule = dir
	return dir
}

func (r *readmeRunner) skip(c readmeCommand, userModule bool) string {
	a, line := c.argv, c.line
	switch {
	case strings.Contains(line, "@VERSION") || strings.Contains(line, "@latest"):
		return "needs the published module"
	case strings.Contains(strings.ToLower(line), "slurm") && os.Getenv("PARSL_TEST_SLURM") != "1":
		return "needs Slurm (PARSL_TEST_SLURM=1 runs it)"
	case len(a) >= 3 && a[0] == "go" && a[1] == "test" && a[len(a)-1] == "./...":
		return "the whole suite, which runs this test"
	case len(a) >= 2 && a[0] == "bash" && a[1] == ".ci/run":
		return "CI, which runs this test"
	case len(a) >= 2 && a[0] == "go" && a[1] == "generate":
		return "writes into the clone; CI's 'generated code is up to date' step runs the generator"
	}
	return ""
}

// run runs one README command the way its kind needs (see TestReadmeCommands).
func (r *readmeRunner) run(c readmeCommand, dir string, userModule bool) {
	t := r.t
	a := c.argv
	env := append(append(os.Environ(), "GOBIN="+r.gobin, "PATH="+r.gobin+string(os.PathListSeparator)+os.Getenv("PATH")), c.env...)
	if userModule {
		// The README's ../parsl is the clone next to the user's module; here
		// the clone is this repository.
		for i := range a {
			a[i] = strings.ReplaceAll(a[i], "=../parsl", "="+r.repo)
		}
		if len(a) >= 2 && a[0] == "go" && a[1] == "mod" && len(a) >= 3 && a[2] == "init" {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return
			}
		}
		r.exec(c, dir, env, a)
		return
	}
	switch {
	case c.shell:
		r.exec(c, dir, env, []string{"bash", "-c", c.line})
	case len(a) >= 2 && a[0] == "go" && a[1] == "test":
		var pkgs []string
		for _, w := range a[2:] {
			if strings.HasPrefix(w, "./") {
				pkgs = append(pkgs, w)
			}
		}
		r.exec(c, r.repo, env, append([]string{"go", "list"}, pkgs...))
	case len(a) >= 3 && a[0] == "go" && a[1] == "run":
		i := 2
		for i < len(a) && strings.HasPrefix(a[i], "-") {
			i++
		}
		if i == len(a) {
			t.Fatalf("%q: no package to run", c.line)
		}
		bin := filepath.Join(r.work, ".bin", filepath.Base(a[i]))
		r.exec(c, r.repo, env, append(append([]string{"go", "build"}, a[2:i]...), "-o", bin, a[i]))
		argv := append([]string{bin}, a[i+1:]...)
		if filepath.Base(a[i]) == "parsl" && len(a) > i+1 && a[i+1] == "visualize" {
			r.server(c, env, argv)
			return
		}
		r.exec(c, r.work, env, argv)
	case len(a) >= 2 && a[0] == "go" && a[1] == "build":
		out := ""
		var rest []string
		for i := 2; i < len(a); i++ {
			if a[i] == "-o" && i+1 < len(a) {
				out = a[i+1]
				i++
				continue
			}
			rest = append(rest, a[i])
		}
		if out == "" {
			out = filepath.Base(rest[len(rest)-1])
		}
		r.exec(c, r.repo, env, append([]string{"go", "build", "-o", filepath.Join(r.work, out)}, rest...))
	default:
		r.exec(c, dir, env, a)
	}
}

func (r *readmeRunner) exec(c readmeCommand, dir string, env, argv []string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("README command %q (ran %q in %s) failed: %v\n%s", c.line, argv, dir, err, out)
	}
}

// server runs parsl visualize: it must answer its first page, and stop on
// SIGINT. The README's port is used when free, another one otherwise.
func (r *readmeRunner) server(c readmeCommand, env, argv []string) {
	t := r.t
	addr := "127.0.0.1:8080"
	for i, w := range argv {
		if w == "--listen" && i+1 < len(argv) {
			addr = argv[i+1]
		}
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
		t.Logf("%s is taken; serving on %s instead", "127.0.0.1:8080", addr)
		argv = append(argv, "--listen", addr)
	}
	out := &syncBuffer{}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.work, env, out, out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(waited)
		exited <- err
	}()
	defer func() {
		select {
		case <-waited:
		default:
			_ = cmd.Process.Kill()
			<-waited
		}
	}()
	url := "http://" + addr + "/"
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("README command %q: GET %s: %s\n%s", c.line, url, resp.Status, out.String())
			}
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("README command %q exited before serving: %v\n%s", c.line, err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("README command %q: no answer at %s within 60 s: %v\n%s", c.line, url, err, out.String())
		}
	}
	// SIGINT as a user's Ctrl-C, again each second: visualize answers
	// requests a moment before its signal handler is in place, and a shell
	// that started this test in the background passes SIGINT on ignored.
	stopBy := time.Now().Add(60 * time.Second)
	for {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("README command %q: after Ctrl-C: %v\n%s", c.line, err, out.String())
			}
			return
		case <-time.After(time.Second):
		}
		if time.Now().After(stopBy) {
			t.Fatalf("README command %q did not stop within 60 s of SIGINT\n%s", c.line, out.String())
		}
	}
}

// syncBuffer is a bytes.Buffer a child's output can be copied into while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
