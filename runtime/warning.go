package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/flakeref"
	"github.com/fleet-deploy/fleet/stdlib"
	"go.starlark.net/syntax"
)

// A Warning is something about fleet.star the user should know that is
// not an error: the load goes on. Every command that loads fleet.star
// prints the Program's warnings, on stderr.
type Warning struct {
	Pos syntax.Position
	Msg string
}

func (w Warning) String() string { return w.Pos.String() + ": " + w.Msg }

// Warnings are the warnings of the load, in the order found.
func (p *Program) Warnings() []Warning { return append([]Warning(nil), p.warnings...) }

// secretWarnings are the warnings about p's secrets that a build would
// copy into the local Nix store, which every user of this machine can
// read: an inline secret(text = ...) in a .star file, or a file = secret,
// that lies in the source of a local flake a host is built from (what
// Nix copies of it: internal/flakeref). An inline text counts when a
// copied file on the call stack of its secret() call holds it as
// written (a literal; text computed at load is not traced). One warning per secret() call
// and file, however many hosts share it. A flake that cannot be read
// (an untracked flake.nix) is left to the build, which says why.
func (p *Program) secretWarnings() []Warning {
	var secrets []*Secret
	for _, h := range p.hosts {
		secrets = append(secrets, h.Keys...)
	}
	if len(secrets) == 0 {
		return nil // reading a work tree runs git: only when needed
	}
	var sources []*flakeref.Source
	seen := map[string]bool{}
	for _, h := range p.hosts {
		dir := h.Flake
		if h.NixOS != nil {
			dir = h.NixOS.Flake
		}
		if !filepath.IsAbs(dir) || seen[dir] {
			continue
		}
		seen[dir] = true
		if s, err := flakeref.Local(dir); err == nil {
			sources = append(sources, s)
		}
	}
	read := map[string][]byte{}
	sourceOf := func(abs string) []byte {
		if b, ok := read[abs]; ok {
			return b
		}
		b, _ := os.ReadFile(abs)
		read[abs] = b
		return b
	}
	var out []Warning
	warned := map[string]bool{}
	for _, k := range secrets {
		file, what := k.File, "its file "+k.File+" lies"
		if text, ok := k.Text(); ok {
			file, what = "", ""
			for _, c := range k.callers {
				abs := p.loader.absPath(c)
				if copied(sources, abs) != nil && holds(sourceOf(abs), text) {
					file, what = abs, "its text is written in "+c+", which lies"
					break
				}
			}
		}
		src := copied(sources, file)
		key := k.Pos.String() + "\x00" + file
		if src == nil || warned[key] {
			continue
		}
		warned[key] = true
		how := "which Nix copies whole (path:, not in a git work tree)"
		if src.Repo != "" {
			how = "whose files git tracks Nix copies (git+file://" + src.Repo + ")"
		}
		out = append(out, Warning{Pos: k.Pos, Msg: fmt.Sprintf(
			"%s: %s in the flake %s, %s into the Nix store, which every user of this machine can read; keep the secret out of the flake: file = a path outside it (or one git ignores), or command = [\"sops\", \"-d\", ...] or [\"pass\", \"show\", ...]",
			k, what, src.Dir, how)})
	}
	return out
}

// holds reports whether src, a .star file, has text in it as a string
// literal: in single or double quotes (or triple ones), verbatim or as
// Starlark quotes it, with escapes.
func holds(src, text []byte) bool {
	if len(src) == 0 || len(text) == 0 {
		return false
	}
	q := syntax.Quote(string(text), false)
	escaped := q[1 : len(q)-1]
	for _, lit := range []string{`"` + string(text) + `"`, `'` + string(text) + `'`, q, `'` + escaped + `'`} {
		if bytes.Contains(src, []byte(lit)) {
			return true
		}
	}
	return false
}

// copied is the source of sources that copies file, or nil.
func copied(sources []*flakeref.Source, file string) *flakeref.Source {
	if file == "" {
		return nil
	}
	for _, s := range sources {
		if s.Copies(file) {
			return s
		}
	}
	return nil
}

// absPath is the absolute path of the file messages name display, ""
// for fleet's embedded stdlib.
func (l *loader) absPath(display string) string {
	if strings.HasPrefix(display, stdlib.Prefix) {
		return ""
	}
	if a, ok := l.abs[display]; ok {
		return a
	}
	if filepath.IsAbs(display) {
		return display
	}
	return ""
}
