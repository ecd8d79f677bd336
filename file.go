package parsl

import (
	"net/url"
	"path/filepath"
	"strings"

	"github.com/parsl-go/parsl/internal/dataflow"
	"github.com/parsl-go/parsl/staging"
)

// File names a file by local path or URL. It can be an app argument (it
// encodes as its URL), an element of Inputs, and a declared output with
// Outputs.
//
// A File is itself an Arg[File], so it can be passed to an app without Val.
// What the app receives depends on the file's location:
//   - a plain path ("data/x.csv", "/abs/x") is used in place; a relative
//     one is resolved against the task's working directory when it has one
//     (see WorkDir);
//   - a file:// URL names a file on a filesystem the task can read, used in
//     place as an input;
//   - any other URL (https://, ftp://, rsync://, ssh://, "user@host:path")
//     is staged in by a parsl.stage_in task, and the app receives a File
//     naming the local copy.
//
// As an output (Outputs), a plain path is written in place, and a URL
// (file:// included) is written to a local path and then staged out; see
// Outputs.
type File struct {
	URL string `cbor:"u"`
}

// NewFile returns a File for a local path ("data/x.csv", "/abs/x") or a URL
// ("file:///abs/x", "https://host/x", "rsync://host/module/x",
// "user@host:path").
func NewFile(pathOrURL string) File { return File{URL: pathOrURL} }

// Scheme returns the URL scheme: "file" for plain paths and file URLs,
// "ssh" for "user@host:path", as the staging registry sees them.
func (f File) Scheme() string {
	if u, err := staging.ParseURL(f.URL); err == nil {
		return u.Scheme
	}
	return "file"
}

// Path returns the local path of a file: the path itself, or the path part
// of a file:// URL, or of any other URL (which is only meaningful on the
// remote side; an app receives staged copies as plain paths).
func (f File) Path() string {
	if !isURL(f.URL) {
		return f.URL
	}
	if u, err := url.Parse(f.URL); err == nil {
		return staging.LocalPath(u)
	}
	return f.URL
}

// Filename returns the last element of the path.
func (f File) Filename() string { return filepath.Base(f.Path()) }

// String returns the URL or path.
func (f File) String() string { return f.URL }

// source and isArg make a File an Arg[File].
func (f File) source() dataflow.Source { return &val[File]{f} }
func (f File) isArg(*File)             {}

// isURL reports whether s has an explicit URL scheme (file: included) or is
// an scp-style remote path, as opposed to a plain local path.
func isURL(s string) bool {
	u, err := staging.ParseURL(s)
	if err != nil {
		return false
	}
	return u.Scheme != "file" || hasFileScheme(s)
}

func hasFileScheme(s string) bool {
	return len(s) >= 5 && strings.EqualFold(s[:5], "file:")
}
