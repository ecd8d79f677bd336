package memo

import (
	"fmt"
	"path/filepath"
)

// Chain loads checkpoint directories together with the earlier checkpoints
// their journals reference (see AppendRefs), each directory once.
//
// A rerun does not copy the results it reused into its own journal, which
// would make every journal in a chain of reruns as large as all the
// distinct results so far. Its journal starts with a reference to the
// directories it loaded instead, and loading it loads them too. So
// LastCheckpoint, which hands over only the newest directory, still brings
// back every result of the chain, and AllCheckpoints, which hands over
// every directory, loads each journal once.
//
// The zero Chain is not ready; use NewChain.
type Chain struct {
	warn func(string)
	// seen holds every directory loaded or tried, as an absolute path.
	seen map[string]bool
	// given are the directories passed to Load, in order, and reached the
	// directories each of them references, directly or not.
	given   []string
	reached []map[string]bool
}

// NewChain returns a Chain that reports damage and unreadable referenced
// checkpoints through warn, which may be nil.
func NewChain(warn func(msg string)) *Chain {
	if warn == nil {
		warn = func(string) {}
	}
	return &Chain{warn: warn, seen: map[string]bool{}}
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// Load returns the records of the journal in dir, preceded by those of the
// checkpoints it references that this Chain has not loaded yet, oldest
// first, so that Table.PutRecords leaves the newest result for a key. A
// directory already loaded gives no records. Only dir's own journal can
// give an error (as LoadDir does); a referenced one that cannot be read is
// reported through warn and skipped, since that only costs running its
// tasks again.
func (c *Chain) Load(dir string) ([]Record, error) {
	abs := absDir(dir)
	reached := map[string]bool{}
	c.given = append(c.given, abs)
	c.reached = append(c.reached, reached)
	if c.seen[abs] {
		return nil, nil
	}
	c.seen[abs] = true
	return c.load(abs, reached)
}

func (c *Chain) load(abs string, reached map[string]bool) ([]Record, error) {
	recs, refs, err := load(filepath.Join(abs, FileName), c.warn)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, r := range refs {
		r = filepath.FromSlash(r)
		if !filepath.IsAbs(r) {
			r = filepath.Join(abs, r)
		}
		r = filepath.Clean(r)
		reached[r] = true
		if c.seen[r] {
			continue
		}
		c.seen[r] = true
		more, err := c.load(r, reached)
		if err != nil {
			c.warn(fmt.Sprintf("memo: checkpoint %s refers to the earlier checkpoint %s, which cannot be loaded (its tasks will run again): %v", abs, r, err))
			continue
		}
		out = append(out, more...)
	}
	return append(out, recs...), nil
}

// Roots returns the fewest of the directories given to Load that reach all
// of them through references, for the new journal's AppendRefs: one given
// directory that a later given one references, directly or not, is left
// out. Comparing with later ones only keeps one of two directories that
// reference each other. except (the new journal's own directory) is left
// out too, as a journal need not reference itself.
func (c *Chain) Roots(except string) []string {
	except = absDir(except)
	var roots []string
	for i, d := range c.given {
		covered := d == except
		for j := i + 1; j < len(c.given) && !covered; j++ {
			covered = c.reached[j][d] || c.given[j] == d
		}
		if !covered {
			roots = append(roots, d)
		}
	}
	return roots
}
