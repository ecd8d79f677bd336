package parsl_test

import (
	"strings"
	"testing"

	"github.com/parsl-go/parsl"
)

// TestConfigFileStaging: working_dir and storage_access reach the
// executors (which report them through WorkingDir/StorageAccess), and an
// unknown staging provider is an error naming the key and the choices.
func TestConfigFileStaging(t *testing.T) {
	cfg, err := parsl.LoadConfigFile(writeConfig(t, `executors:
  - kind: threads
    working_dir: /scratch/run
    storage_access: [file, http]
  - kind: htex
    working_dir: /scratch/htex
    storage_access: [rsync]
    provider: {kind: local}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		dir     string
		schemes string
	}{{"/scratch/run", "file http https"}, {"/scratch/htex", "rsync ssh"}} {
		e := cfg.Executors[i]
		wd, ok := e.(parsl.WorkingDirExecutor)
		if !ok || wd.WorkingDir() != want.dir {
			t.Errorf("executor %d: working dir %v, want %s", i, e, want.dir)
		}
		sa, ok := e.(parsl.StorageAccessExecutor)
		if !ok {
			t.Fatalf("executor %d has no StorageAccess", i)
		}
		var schemes []string
		for _, p := range sa.StorageAccess() {
			schemes = append(schemes, p.Schemes()...)
		}
		if got := strings.Join(schemes, " "); got != want.schemes {
			t.Errorf("executor %d: schemes %q, want %q", i, got, want.schemes)
		}
	}
	_, err = parsl.LoadConfigFile(writeConfig(t, "executors:\n  - kind: threads\n    storage_access: [s3]\n"))
	if err == nil || !strings.Contains(err.Error(), `executors[0].storage_access: unknown staging provider "s3"; known: file, ftp, http, rsync`) {
		t.Errorf("unknown staging provider: %v", err)
	}
}

// TestConfigFileResourceInterval: htex's resource_interval takes a
// duration, start_end or off, and refuses anything else with its line.
func TestConfigFileResourceInterval(t *testing.T) {
	for _, v := range []string{"2s", "start_end", "off"} {
		if _, err := parsl.LoadConfigFile(writeConfig(t, "executors:\n  - kind: htex\n    resource_interval: "+v+"\n    provider: {kind: local}\n")); err != nil {
			t.Errorf("resource_interval %s: %v", v, err)
		}
	}
	_, err := parsl.LoadConfigFile(writeConfig(t, "executors:\n  - kind: htex\n    resource_interval: often\n"))
	if err == nil || !strings.Contains(err.Error(), `:3: executors[0].resource_interval: want a duration such as 5s, or start_end, or off; got "often"`) {
		t.Errorf("bad resource_interval: %v", err)
	}
}
