package parsl

import (
	"net/url"
	"path/filepath"
	"strings"
)

// File names a file by local path or URL. It can be an app argument (it
// encodes as its URL) and can be declared as an output with Outputs.
type File struct {
	URL string `cbor:"u"`
}

// NewFile returns a File for a local path ("data/x.csv", "/abs/x") or a URL
// ("file:///abs/x", "https://host/x").
func NewFile(pathOrURL string) File { return File{URL: pathOrURL} }

// Scheme returns the URL scheme; "file" for plain paths.
func (f File) Scheme() string {
	if u, err := url.Parse(f.URL); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		return strings.ToLower(u.Scheme)
	}
	return "file"
}

// Path returns the local path of a file: the path itself, or the path part
// of a file:// URL, or of any other URL.
func (f File) Path() string {
	if f.Scheme() == "file" {
		if strings.HasPrefix(f.URL, "file://") {
			if u, err := url.Parse(f.URL); err == nil {
				return u.Path
			}
		}
		return f.URL
	}
	if u, err := url.Parse(f.URL); err == nil {
		return u.Path
	}
	return f.URL
}

// Filename returns the last element of the path.
func (f File) Filename() string { return filepath.Base(f.Path()) }

// String returns the URL or path.
func (f File) String() string { return f.URL }
