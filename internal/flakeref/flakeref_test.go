package flakeref

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/nixconf"
)

func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }

const flakeNix = `{ outputs = { self }: { }; }` + "\n"

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.email=t@t", "-c", "user.name=t"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func write(t *testing.T, file, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// repo makes a git work tree with a committed flake in sub/, a tracked
// but uncommitted file, a gitignored secret and an untracked one.
func repo(t *testing.T) string {
	t.Helper()
	r := filepath.Join(t.TempDir(), "repo")
	write(t, filepath.Join(r, "flake.nix"), flakeNix)
	write(t, filepath.Join(r, "sub", "flake.nix"), flakeNix)
	write(t, filepath.Join(r, "sub", "fleet.star"), "# tracked\n")
	write(t, filepath.Join(r, ".gitignore"), "*.key\n")
	git(t, r, "init", "-q")
	git(t, r, "add", ".")
	git(t, r, "commit", "-qm", "init")
	write(t, filepath.Join(r, "sub", "added.txt"), "staged\n")
	git(t, r, "add", "sub/added.txt")
	write(t, filepath.Join(r, "sub", "ignored.key"), "IGNORED-SECRET\n")
	write(t, filepath.Join(r, "sub", "untracked.txt"), "UNTRACKED-SECRET\n")
	return r
}

func TestLocal(t *testing.T) {
	r := repo(t)
	plain := t.TempDir()
	write(t, filepath.Join(plain, "flake.nix"), flakeNix)

	s, err := Local(filepath.Join(r, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "git+file://" + r + "?dir=sub"; s.URL != want {
		t.Errorf("URL %s, want %s", s.URL, want)
	}
	if s.Repo != r || s.Root() != r {
		t.Errorf("repo %q", s.Repo)
	}
	for file, want := range map[string]bool{
		"sub/flake.nix":     true,
		"sub/fleet.star":    true,
		"sub/added.txt":     true, // in the index: Nix copies it
		".gitignore":        true,
		"sub/ignored.key":   false,
		"sub/untracked.txt": false,
		"elsewhere":         false,
	} {
		if got := s.Copies(filepath.Join(r, file)); got != want {
			t.Errorf("Copies(%s) = %v, want %v", file, got, want)
		}
	}
	if s.Copies(filepath.Join(plain, "flake.nix")) {
		t.Error("a file outside the work tree is copied")
	}
	if got := Dir(s.URL); got != filepath.Join(r, "sub") {
		t.Errorf("Dir(%s) = %s", s.URL, got)
	}

	top, err := Local(r + "/")
	if err != nil {
		t.Fatal(err)
	}
	if top.URL != "git+file://"+r || Dir(top.URL) != r {
		t.Errorf("work tree root: %s", top.URL)
	}

	p, err := Local(plain)
	if err != nil {
		t.Fatal(err)
	}
	if p.URL != "path:"+plain || p.Repo != "" || Dir(p.URL) != plain {
		t.Errorf("outside git: %+v", p)
	}
	if !p.Copies(filepath.Join(plain, "any", "thing")) || p.Copies(filepath.Dir(plain)) {
		t.Error("a path: flake copies everything under its directory, nothing else")
	}
	if got, _ := URL("github:NixOS/nixpkgs"); got != "github:NixOS/nixpkgs" {
		t.Errorf("URL of a reference: %s", got)
	}
	if Dir("github:NixOS/nixpkgs") != "" {
		t.Error("Dir of a remote reference")
	}
}

// TestEscaped: a work tree whose path needs escaping in a URL is named
// exactly, and refused while it has uncommitted changes (Nix 2.8 would
// read its last commit instead).
func TestEscaped(t *testing.T) {
	r := filepath.Join(t.TempDir(), "a b#c")
	write(t, filepath.Join(r, "s %d", "flake.nix"), flakeNix)
	git(t, r, "init", "-q")
	git(t, r, "add", ".")
	git(t, r, "commit", "-qm", "init")
	dir := filepath.Join(r, "s %d")
	s, err := Local(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(s.URL, "/a%20b%23c?dir=s%20%25d") || Dir(s.URL) != dir {
		t.Errorf("URL %s, Dir %s", s.URL, Dir(s.URL))
	}
	write(t, filepath.Join(dir, "flake.nix"), "# changed\n"+flakeNix)
	if _, err := Local(dir); err == nil || !strings.Contains(err.Error(), "uncommitted changes") {
		t.Errorf("dirty escaped work tree: %v", err)
	}
}

func TestUntracked(t *testing.T) {
	r := repo(t)
	for _, file := range []string{"new/flake.nix", "locked/flake.lock"} {
		dir := filepath.Join(r, filepath.Dir(file))
		write(t, filepath.Join(dir, "flake.nix"), flakeNix)
		if filepath.Base(file) == "flake.lock" {
			git(t, r, "add", filepath.Join(dir, "flake.nix"))
			write(t, filepath.Join(dir, "flake.lock"), `{"nodes":{"root":{}},"root":"root","version":7}`)
		}
		_, err := Local(dir)
		var ue *UntrackedError
		if !errors.As(err, &ue) {
			t.Fatalf("%s: err %v, want an UntrackedError", file, err)
		}
		if !strings.Contains(err.Error(), "not tracked by git") || !strings.Contains(err.Error(), "`"+ue.Fix()+"`") || ue.Fix() != "git -C "+r+" add "+file {
			t.Errorf("%s: %v; fix %s", file, err, ue.Fix())
		}
		git(t, r, "add", file)
		if _, err := Local(dir); err != nil {
			t.Errorf("%s after git add: %v", file, err)
		}
	}
}

// TestNixCopiesTrackedOnly fetches the flake with this machine's Nix, as
// fleet's build does, and looks at what reached the store: the tracked
// files (with their uncommitted contents), never the ignored or
// untracked secrets.
func TestNixCopiesTrackedOnly(t *testing.T) {
	if _, err := exec.LookPath("nix"); err != nil {
		t.Skip("no nix")
	}
	r := repo(t)
	write(t, filepath.Join(r, "sub", "fleet.star"), "# changed, not committed\n")
	s, err := Local(filepath.Join(r, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nix-instantiate", "--eval", "--json", "--expr",
		`(builtins.getFlake "`+s.URL+`").outPath`).CombinedOutput()
	if err != nil {
		t.Fatalf("nix: %v\n%s", err, out)
	}
	store := strings.Trim(strings.TrimSpace(string(out)), `"`)
	if !strings.HasPrefix(store, "/nix/store/") {
		t.Fatalf("store path %q", store)
	}
	got, err := os.ReadFile(filepath.Join(store, "sub", "fleet.star"))
	if err != nil || string(got) != "# changed, not committed\n" {
		t.Errorf("fleet.star in the store: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(store, "sub", "added.txt")); err != nil {
		t.Errorf("the staged file is missing: %v", err)
	}
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "SECRET") {
			t.Errorf("%s reached the store: %q", p, b)
		}
		return nil
	})
}

// TestShallow: a shallow clone is named with shallow=1, as Nix names it
// (Nix refuses a shallow repository without it).
func TestShallow(t *testing.T) {
	r := repo(t)
	write(t, filepath.Join(r, ".git", "shallow"), "")
	s, err := Local(filepath.Join(r, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "git+file://" + r + "?dir=sub&shallow=1"; s.URL != want || Dir(s.URL) != filepath.Join(r, "sub") {
		t.Errorf("URL %s, want %s", s.URL, want)
	}
}
