package memo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// AllCheckpoints returns the checkpoint directories <runDir>/<N>/checkpoint
// that hold a journal, for every purely numeric run sub-directory N, oldest
// run first, so that loading them in order lets newer results win. Run
// numbers compare numerically (999 before 1000); other entries, such as
// monitoring.db, are ignored. A missing runDir means no earlier runs: an
// empty list and a nil error.
func AllCheckpoints(runDir string) ([]string, error) {
	ents, err := os.ReadDir(runDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("memo: list run directory: %w", err)
	}
	var runs []string
	for _, e := range ents {
		if isRunNumber(e.Name()) {
			runs = append(runs, e.Name())
		}
	}
	slices.SortFunc(runs, compareRunNumbers)
	var dirs []string
	for _, n := range runs {
		dir := filepath.Join(runDir, n, Dir)
		st, err := os.Stat(filepath.Join(dir, FileName))
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid):
			continue
		case err != nil && isNotDir(err):
			continue // N is a plain file, or checkpoint is
		case err != nil:
			return nil, fmt.Errorf("memo: find checkpoints: %w", err)
		case !st.Mode().IsRegular():
			continue
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// LastCheckpoint returns the newest of the directories AllCheckpoints finds,
// as a list of at most one, so that callers can treat both alike. Its
// journal's references (see Chain) bring back the earlier checkpoints of
// its chain.
func LastCheckpoint(runDir string) ([]string, error) {
	all, err := AllCheckpoints(runDir)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return all[len(all)-1:], nil
}

func isRunNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareRunNumbers orders decimal strings by value without parsing them,
// so that any length works; equal values ("7", "007") fall back to the name
// to keep the order deterministic.
func compareRunNumbers(a, b string) int {
	ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(ta) != len(tb) {
		return len(ta) - len(tb)
	}
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
