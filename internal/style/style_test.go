// Package style checks rules of the project's style that the compiler and
// vet do not: tests here read the module's source.
package style

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// logMethods are the slog.Logger methods whose arguments after the message
// are key-value pairs (With and the attrs of WithGroup-less loggers have no
// message).
var logMethods = map[string]int{ // method -> index of the first key
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"With": 0,
}

var kebab = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// TestLogKeys: every constant log key in the module is kebab-case, and
// errors always go under "error" (never "err"), so one query finds every
// logged error.
func TestLogKeys(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			first, ok := logMethods[sel.Sel.Name]
			if !ok || call.Ellipsis.IsValid() {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && (id.Name == "t" || id.Name == "b" || id.Name == "tb") {
				return true // testing.T's Error, not a logger's
			}
			for i := first; i < len(call.Args); i += 2 {
				lit, ok := call.Args[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					break // not key-value pairs (or a slog.Attr): stop here
				}
				key, _ := strconv.Unquote(lit.Value)
				checked++
				switch {
				case key == "err":
					t.Errorf("%s: log key %q: errors go under \"error\"", fset.Position(lit.Pos()), key)
				case !kebab.MatchString(key):
					t.Errorf("%s: log key %q is not kebab-case", fset.Position(lit.Pos()), key)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d log keys found: is the walk reading the module?", checked)
	}
}
