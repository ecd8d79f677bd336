package parsl

import "testing"

func TestFileParts(t *testing.T) {
	for _, c := range []struct {
		in, scheme, path, name string
		url                    bool
	}{
		{"data/x.csv", "file", "data/x.csv", "x.csv", false},
		{"/abs/x", "file", "/abs/x", "x", false},
		{"file:///abs/x", "file", "/abs/x", "x", true},
		{"file:rel/x", "file", "rel/x", "x", true},
		{"HTTPS://host/d/x.txt", "https", "/d/x.txt", "x.txt", true},
		{"rsync://host/mod/x", "rsync", "/mod/x", "x", true},
		{"alice@host:/p/x", "ssh", "alice@host:/p/x", "x", true},
		{"C:/x", "file", "C:/x", "x", false},
	} {
		f := NewFile(c.in)
		if f.Scheme() != c.scheme || f.Path() != c.path || f.Filename() != c.name || isURL(c.in) != c.url {
			t.Errorf("%s: scheme %q path %q name %q url %v; want %q %q %q %v",
				c.in, f.Scheme(), f.Path(), f.Filename(), isURL(c.in), c.scheme, c.path, c.name, c.url)
		}
	}
}
