package parsl

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// docOf returns the doc comment of the function or type name declared in
// the Go file path.
func docOf(t *testing.T, path, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Name.Name == name && d.Doc != nil {
				return d.Doc.Text()
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == name && d.Doc != nil {
					return d.Doc.Text()
				}
			}
		}
	}
	t.Fatalf("%s: no doc comment on %s", path, name)
	return ""
}

// TestLoadConfigFileDocListsEveryKind keeps the LoadConfigFile doc in step
// with the registries: it once listed two launchers of the nine a file can
// name. A kind registered without being documented fails here.
func TestLoadConfigFileDocListsEveryKind(t *testing.T) {
	doc := docOf(t, "configfile.go", "LoadConfigFile")
	for _, k := range slices.Sorted(maps.Keys(launcherKinds)) {
		if !strings.Contains(doc, k) {
			t.Errorf("LoadConfigFile's doc does not name launcher %q, which a file can name", k)
		}
	}
	for _, k := range append(slices.Sorted(maps.Keys(providerKinds)), slices.Sorted(maps.Keys(optionalKinds))...) {
		if !strings.Contains(doc, k) {
			t.Errorf("LoadConfigFile's doc does not name provider kind %q, which a file can name", k)
		}
	}
}

// TestConfigFileErrorDocQuotesRealMessage checks that the sample message in
// ConfigFileError's doc is the one a misspelt provider kind really gives.
func TestConfigFileErrorDocQuotesRealMessage(t *testing.T) {
	doc := docOf(t, "configfile.go", "ConfigFileError")
	var quoted string
	for l := range strings.SplitSeq(doc, "\n") {
		if strings.Contains(l, `unknown kind "slrum"`) {
			quoted = strings.TrimSpace(l)
		}
	}
	if quoted == "" {
		t.Fatal(`ConfigFileError's doc has no sample "unknown kind \"slrum\"" message`)
	}
	// The sample names config.yaml line 7: build that file.
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	text := "retries: 1\nexecutors:\n  - kind: htex\n    label: htex\n    max_workers_per_node: 2\n    provider:\n      kind: slrum\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfigFile(path)
	var ce *ConfigFileError
	if !errors.As(err, &ce) {
		t.Fatalf("LoadConfigFile: %v, want a *ConfigFileError", err)
	}
	got := strings.Replace(ce.Error(), path, "config.yaml", 1)
	if got != quoted {
		t.Errorf("ConfigFileError's doc quotes\n\t%s\nbut the real message is\n\t%s", quoted, got)
	}
}
