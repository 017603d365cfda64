// Package flakeref says how Nix names a flake in a local directory and
// which of that directory's files it copies into the (world-readable)
// Nix store when it evaluates the flake.
//
// fleet names local flakes as `nix build DIR` does (Nix 2.8 and current
// Nix alike, parsePathFlakeRefWithFragment in libflake's flakeref.cc):
// from DIR up, the first directory that holds a .git (a directory, or
// the file of a linked work tree or submodule) is a git work tree ROOT,
// and the flake is
//
//	git+file:///ROOT?dir=SUBDIR
//
// (no dir when DIR is ROOT; shallow=1 when ROOT/.git/shallow exists).
// Nix then copies the files git tracks - those in the index, with their
// contents in the work tree, so uncommitted changes count and untracked
// or ignored files never reach the store. A flake.nix (or flake.lock)
// that git does not track is invisible to Nix; Local refuses it with the
// `git add` that fixes it, where Nix 2.8 would say "getting status of
// '/nix/store/...-source/SUBDIR': No such file or directory". A
// directory in no git work tree is `path:DIR`, and Nix copies all of it.
//
// The walk does not resolve symlinks, as Nix's does not.
package flakeref

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/internal/shell"
)

// A Source is a local flake directory as Nix fetches it.
type Source struct {
	Dir string // the flake directory, absolute and clean
	URL string // the flake reference Nix is given (builtins.getFlake)
	// Repo is the git work tree the flake lies in: Nix copies the files
	// git tracks there. Empty for a path: flake, of which Nix copies
	// everything under Dir.
	Repo    string
	tracked map[string]bool // slash-separated, relative to Repo
}

// timeout bounds each git command: a work tree on a hung network file
// system must not hang fleet.
const timeout = 30 * time.Second

// UntrackedError is a flake file Nix cannot see because git does not
// track it.
type UntrackedError struct {
	File string // absolute
	Repo string
}

func (e *UntrackedError) Error() string {
	return e.What() + "; run `" + e.Fix() + "`"
}

// What says what is wrong, without the fix.
func (e *UntrackedError) What() string {
	return fmt.Sprintf("%s is not tracked by git, so Nix cannot see it: Nix reads a flake in a git work tree from the files git tracks (git+file://%s), as `nix build` does", e.File, e.Repo)
}

// Fix is the command that makes the file visible to Nix.
func (e *UntrackedError) Fix() string {
	rel, _ := filepath.Rel(e.Repo, e.File)
	return fmt.Sprintf("git -C %s add %s", shell.Quote(e.Repo), shell.Quote(rel))
}

// Local returns how Nix fetches the flake in dir (absolute). In a git
// work tree, it fails with an *UntrackedError when git does not track
// dir/flake.nix, or a dir/flake.lock that exists.
func Local(dir string) (*Source, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("flake directory %q is not absolute", dir)
	}
	dir = filepath.Clean(dir)
	repo := workTree(dir)
	if repo == "" {
		return &Source{Dir: dir, URL: "path:" + dir}, nil
	}
	tracked, err := lsFiles(repo)
	if err != nil {
		return nil, err
	}
	if escape(repo) != repo {
		if err := committed(repo); err != nil {
			return nil, err
		}
	}
	s := &Source{Dir: dir, Repo: repo, tracked: tracked}
	var query []string
	if rel, _ := filepath.Rel(repo, dir); rel != "." {
		query = append(query, "dir="+escape(filepath.ToSlash(rel)))
	}
	if _, err := os.Lstat(filepath.Join(repo, ".git", "shallow")); err == nil {
		query = append(query, "shallow=1")
	}
	s.URL = "git+file://" + escape(repo)
	if len(query) > 0 {
		s.URL += "?" + strings.Join(query, "&")
	}
	for _, name := range []string{"flake.nix", "flake.lock"} {
		f := filepath.Join(dir, name)
		if _, err := os.Lstat(f); err != nil && name == "flake.lock" {
			continue // no lock file: Nix's error (or fleet's preflight) says so
		}
		if !s.Copies(f) {
			return nil, &UntrackedError{File: f, Repo: repo}
		}
	}
	return s, nil
}

// URL is ref as Nix is given it: Local's URL for a local directory
// (absolute), ref itself for any other flake reference.
func URL(ref string) (string, error) {
	if !filepath.IsAbs(ref) {
		return ref, nil
	}
	s, err := Local(ref)
	if err != nil {
		return "", err
	}
	return s.URL, nil
}

// Dir is the local directory a flake reference made by Local names, or "" for
// any other reference.
func Dir(ref string) string {
	if p, ok := strings.CutPrefix(ref, "path:"); ok {
		p, _, _ = strings.Cut(p, "?")
		p, _, _ = strings.Cut(p, "#")
		return p
	}
	p, ok := strings.CutPrefix(ref, "git+file://")
	if !ok {
		return ""
	}
	p, query, _ := strings.Cut(p, "?")
	query, _, _ = strings.Cut(query, "#")
	root, err := url.PathUnescape(p)
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(query, "&") {
		if d, ok := strings.CutPrefix(kv, "dir="); ok {
			sub, err := url.PathUnescape(d)
			if err != nil {
				return ""
			}
			return filepath.Join(root, filepath.FromSlash(sub))
		}
	}
	return root
}

// Copies reports whether Nix copies file (absolute) into the store when
// it fetches s: for a git work tree, whether git tracks it; for a path:
// flake, whether it lies under Dir.
func (s *Source) Copies(file string) bool {
	if s.Repo == "" {
		return within(s.Dir, file)
	}
	if !within(s.Repo, file) {
		return false
	}
	rel, _ := filepath.Rel(s.Repo, filepath.Clean(file))
	return s.tracked[filepath.ToSlash(rel)]
}

// Root is the directory Nix copies from: Repo or Dir.
func (s *Source) Root() string {
	if s.Repo != "" {
		return s.Repo
	}
	return s.Dir
}

// workTree is the directory from dir up that holds a .git, or "".
func workTree(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

// committed fails when the work tree repo has uncommitted changes to
// tracked files. Nix 2.8 does not see them when repo's path has a
// character a URL escapes (it checks the tree for changes under the
// escaped name, finds none, and reads the last commit), so a build would
// silently use older files.
func committed(repo string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return fmt.Errorf("git status in %s: %v", repo, err)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		return fmt.Errorf("%s has uncommitted changes, which Nix 2.8 does not see in a work tree whose path has characters a URL escapes: commit them, or move the checkout to a plainer path", repo)
	}
	return nil
}

// lsFiles is the set of files git tracks in repo, as Nix lists them
// (git ls-files).
func lsFiles(repo string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "ls-files", "-z")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s is a git work tree, which Nix reads with git, and git is not installed", repo)
		}
		return nil, fmt.Errorf("listing the files git tracks in %s: %v: %s", repo, err, strings.TrimSpace(stderr.String()))
	}
	files := map[string]bool{}
	for _, f := range bytes.Split(out, []byte{0}) {
		if len(f) > 0 {
			files[string(f)] = true
		}
	}
	return files, nil
}

// within reports whether p lies under (or is) dir.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// escape percent-encodes every byte of p but letters, digits, "-._~" and
// "/", so that Nix's URL parser reads p back exactly (it decodes the
// path and query of a git+file URL).
func escape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
