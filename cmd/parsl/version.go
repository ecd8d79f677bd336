package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what "parsl version" reports.
type versionInfo struct {
	Module    string
	Version   string
	Revision  string // VCS revision, "" when the build has none
	Time      string // VCS commit time
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string
}

func readVersion() versionInfo {
	v := versionInfo{Module: "github.com/parsl-go/parsl", Version: "(unknown)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version, VCS revision and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := readVersion()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "parsl %s (%s)\n", v.Version, v.Module)
			rev := v.Revision
			if rev == "" {
				rev = "unknown (built without VCS information)"
			} else {
				if v.Modified {
					rev += " (modified)"
				}
				if v.Time != "" {
					rev += " " + v.Time
				}
			}
			fmt.Fprintf(w, "revision: %s\n", rev)
			fmt.Fprintf(w, "go: %s %s/%s\n", v.GoVersion, runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
