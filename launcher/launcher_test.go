package launcher_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parsl-go/parsl/launcher"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestSingleNodeOneCopyIsUnchanged(t *testing.T) {
	cmd := []string{"/bin/pool", "--x"}
	got := launcher.SingleNode(cmd, 1, 1)
	if strings.Join(got, "\x00") != strings.Join(cmd, "\x00") {
		t.Fatalf("SingleNode(1,1) = %q, want %q", got, cmd)
	}
	got[0] = "changed"
	if cmd[0] != "/bin/pool" {
		t.Fatal("SingleNode must not alias its input")
	}
}

func TestSingleNodeGolden(t *testing.T) {
	got := strings.Join(launcher.SingleNode([]string{"/bin/pool", "--block", "3"}, 2, 2), "\n---\n") + "\n"
	golden := filepath.Join("testdata", "singlenode.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading %s (run go test -update to create it): %v", golden, err)
	}
	if got != string(want) {
		t.Fatalf("SingleNode output changed:\n%s\nwant:\n%s", got, want)
	}
}

func TestSingleNodeRunsEveryCopy(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	dir := t.TempDir()
	// Each copy creates a unique file; 3 tasks × 2 nodes = 6 copies.
	argv := launcher.SingleNode([]string{"sh", "-c", `mktemp "$0/copy.XXXXXX" >/dev/null`, dir}, 3, 2)
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("launcher script failed: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "copy.*"))
	if len(files) != 6 {
		t.Fatalf("got %d copies, want 6", len(files))
	}
}

func TestSingleNodeFailsOnlyWhenAllFail(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	some := launcher.SingleNode([]string{"sh", "-c", `[ -e "$0/ok" ] || { touch "$0/ok"; exit 0; }; exit 3`, t.TempDir()}, 3, 1)
	if err := exec.Command(some[0], some[1:]...).Run(); err != nil {
		t.Fatalf("one copy succeeded, so the block must succeed: %v", err)
	}
	all := launcher.SingleNode([]string{"false"}, 2, 1)
	if err := exec.Command(all[0], all[1:]...).Run(); err == nil {
		t.Fatal("every copy failed, so the block must fail")
	}
}
