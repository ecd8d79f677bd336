package launcher

import (
	"fmt"
	"sort"
	"strings"
)

// byName maps a normalised launcher name to the launcher with default
// options. Wrapped is absent because it needs a prefix.
var byName = map[string]Launcher{
	"simple":      Simple,
	"singlenode":  SingleNode,
	"srun":        Srun,
	"srunmpi":     SrunMPI(SrunMPIOptions{}),
	"mpiexec":     Mpiexec(MpiexecOptions{}),
	"mpirun":      Mpirun(MpirunOptions{}),
	"aprun":       Aprun(AprunOptions{}),
	"jsrun":       Jsrun(JsrunOptions{}),
	"gnuparallel": GnuParallel(GnuParallelOptions{}),
}

// ByName returns the launcher called name with default options, as a site
// configuration names it. Case, "_" and "-" are ignored and Parsl's class
// names are accepted, so "single_node", "SingleNodeLauncher" and
// "MpiExecLauncher" all work. An unknown name is an error listing the
// known ones.
func ByName(name string) (Launcher, error) {
	key := strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(name))
	key = strings.TrimSuffix(key, "launcher")
	if l, ok := byName[key]; ok {
		return l, nil
	}
	if key == "wrapped" {
		return nil, fmt.Errorf("launcher %q needs a prefix: use launcher.Wrapped(prefix)", name)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown launcher %q; known launchers: %s", name, strings.Join(names, ", "))
}
