package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/stdlib"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// fileOptions enable the parts of Python that host factories want:
// while loops, recursion, and control flow at the top level.
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

// loader executes fleet.star and the files it loads, once each.
// Local files are named relative to the file that loads them and must
// stay inside the project directory (that of the main file);
// "@fleet//x.star" names an embedded stdlib file.
type loader struct {
	main     string              // absolute path of the main file
	root     string              // absolute project directory
	cwd      string              // to print short file names
	universe starlark.StringDict // predeclared names
	modules  map[string]*module  // by display name
	stack    []string            // display names of files being loaded
	abs      map[string]string   // display name -> absolute path
}

type module struct {
	src     []byte // as executed, for error snippets
	globals starlark.StringDict
	err     error
	done    bool
}

func newLoader(mainFile string, universe starlark.StringDict) (*loader, error) {
	abs, err := filepath.Abs(mainFile)
	if err != nil {
		return nil, err
	}
	cwd, _ := os.Getwd()
	return &loader{
		main:     abs,
		root:     filepath.Dir(abs),
		cwd:      cwd,
		universe: universe,
		modules:  map[string]*module{},
		abs:      map[string]string{},
	}, nil
}

// fork returns a loader that starts from l's modules but records its
// own: a deploy loads its strategy with it, so that the loaded Program
// is never written to and can run again.
func (l *loader) fork() *loader {
	f := *l
	f.modules, f.abs, f.stack = maps.Clone(l.modules), maps.Clone(l.abs), nil
	return &f
}

// display is the name a file has in messages and positions.
func (l *loader) display(abs string) string {
	if l.cwd != "" {
		if rel, err := filepath.Rel(l.cwd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			if rel == "." {
				return "./"
			}
			return rel
		}
	}
	return abs
}

// resolve makes p, written in the file named from, absolute.
func (l *loader) resolve(from, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	dir := l.root
	if a, ok := l.abs[from]; ok {
		dir = filepath.Dir(a)
	}
	return filepath.Join(dir, p)
}

// source returns the text of a file the loader executed, for error
// snippets: the text as it was read, never read again (the file may
// have changed, or be a FIFO by now).
func (l *loader) source(display string) []byte {
	if m, ok := l.modules[display]; ok {
		return m.src
	}
	return nil
}

// execMain executes the main file.
func (l *loader) execMain(th *starlark.Thread, abs string) (starlark.StringDict, error) {
	return l.exec(th, l.display(abs), abs)
}

// load implements starlark.Thread.Load.
func (l *loader) load(th *starlark.Thread, name string) (starlark.StringDict, error) {
	if strings.HasPrefix(name, stdlib.Prefix) {
		return l.exec(th, name, "")
	}
	if strings.HasPrefix(name, "@") {
		return nil, fmt.Errorf("unknown repository in %q: only %sNAME.star names fleet's stdlib", name, stdlib.Prefix)
	}
	from := ""
	if n := len(l.stack); n > 0 {
		from = l.stack[n-1]
	}
	abs := l.resolve(from, name)
	if err := l.inside(abs); err != nil {
		return nil, err
	}
	return l.exec(th, l.display(abs), abs)
}

// inside checks that abs lies in the project directory, so a script can
// read only the project's own files.
func (l *loader) inside(abs string) error {
	outside := func(root, p string) bool {
		rel, err := filepath.Rel(root, p)
		return err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	err := fmt.Errorf("%s is outside the project directory %s; fleet only reads files under the directory of the main file", l.display(abs), l.display(l.root))
	if outside(l.root, abs) {
		return err
	}
	// A symlink inside the project may still point out of it.
	real, serr := filepath.EvalSymlinks(abs)
	if serr != nil {
		if errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("%s: no such file", l.display(abs))
		}
		return serr
	}
	root, serr := filepath.EvalSymlinks(l.root)
	if serr != nil {
		return serr
	}
	if outside(root, real) {
		return err
	}
	return nil
}

// threadContext is cancelled when th's run is interrupted or stopped.
func threadContext(th *starlark.Thread) context.Context {
	if r := RunOf(th); r != nil {
		return r.threads
	}
	return context.Background()
}

func (l *loader) exec(th *starlark.Thread, display, abs string) (starlark.StringDict, error) {
	if m, ok := l.modules[display]; ok {
		if !m.done {
			cycle := append([]string(nil), l.stack...)
			for i, f := range cycle {
				if f == display {
					cycle = cycle[i:]
					break
				}
			}
			return nil, fmt.Errorf("load cycle: %s -> %s", strings.Join(cycle, " -> "), display)
		}
		return m.globals, m.err
	}
	var src []byte
	var err error
	if abs == "" {
		src, err = fs.ReadFile(stdlib.FS, strings.TrimPrefix(display, stdlib.Prefix))
		if err != nil {
			return nil, fmt.Errorf("%s: no such file in fleet's stdlib", display)
		}
	} else {
		l.abs[display] = abs
		if src, err = readSource(threadContext(th), display, abs); err != nil {
			return nil, err
		}
	}
	m := &module{src: src}
	l.modules[display] = m
	l.stack = append(l.stack, display)
	m.globals, m.err = starlark.ExecFileOptions(fileOptions, th, display, src, l.universe)
	l.stack = l.stack[:len(l.stack)-1]
	m.done = true
	return m.globals, m.err
}
