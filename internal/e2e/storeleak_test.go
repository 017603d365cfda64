package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestSecretsStayOutOfStore deploys from a flake in a git work tree: Nix
// gets it as git+file:, so the store copy of its source holds the files
// git tracks (with their uncommitted changes) and never the ignored key
// file a secret reads, nor an untracked file. A tracked key file, or a
// text literal in a tracked fleet.star, is a warning at load naming the
// secret's position; a flake.nix git does not track is refused with the
// git add that fixes it.
func TestSecretsStayOutOfStore(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	mark := func(what string) string {
		b := make([]byte, 8)
		rand.Read(b)
		return what + "-" + hex.EncodeToString(b)
	}
	keyMark, untrackedMark, trackedMark := mark("IGNORED-KEY"), mark("UNTRACKED"), mark("TRACKED")
	repo := filepath.Join(t.TempDir(), "repo")
	dir := filepath.Join(repo, "deploy")
	write := func(name, text string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(filepath.Join(repo, name)), 0o755)
		if err := os.WriteFile(filepath.Join(repo, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		t.Helper()
		cmd := osexec.Command("git", append([]string{"-C", repo, "-c", "user.email=t@t", "-c", "user.name=t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write(".gitignore", "*.key\n")
	// No inputs of its own (nixpkgs is --override-input's): reading self
	// fetches nothing but the flake.
	write("deploy/flake.nix", "{ outputs = { self }: { }; }\n")
	// The module reads self, so the flake's source is fetched (as it is
	// whenever an input is not overridden).
	write("deploy/fleet.star", `host(name = "a", target_host = "a", keys = [secret("/run/keys/wifi", file = "wifi.key")],
     nixos = nixos_system(modules = [nix_expr("{ environment.etc.fleet-source.text = builtins.unsafeDiscardStringContext self.outPath; }")]))
`)
	write("deploy/notes.txt", "committed\n")
	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "init")
	write("deploy/notes.txt", trackedMark+"\n") // tracked, changed, not committed
	write("deploy/wifi.key", keyMark)
	write("deploy/draft.txt", untrackedMark)
	file := filepath.Join(dir, "fleet.star")

	sources := func() map[string]bool {
		m := map[string]bool{}
		paths, _ := filepath.Glob("/nix/store/*-source")
		for _, p := range paths {
			m[p] = true
		}
		return m
	}
	before := sources()
	r := fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("deploy: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "warning:") {
		t.Errorf("a warning, though no secret lies in what Nix copies:\n%s", r.stderr)
	}
	if got := exec(t, l.Host("a"), "cat /run/keys/wifi"); got != keyMark {
		t.Errorf("the key on a: %q", got)
	}
	var copies []string
	for p := range sources() {
		if !before[p] {
			copies = append(copies, p)
		}
	}
	found := false
	for _, p := range copies {
		b, err := os.ReadFile(filepath.Join(p, "deploy", "notes.txt"))
		found = found || err == nil && strings.Contains(string(b), trackedMark)
	}
	if !found {
		t.Errorf("no new store source holds the tracked, changed notes.txt (new: %v): was the flake fetched as git+file:?", copies)
	}
	paths, _ := filepath.Glob("/nix/store/*-source")
	for _, p := range paths {
		out, _ := osexec.Command("grep", "-rl", "--binary-files=text", "-e", keyMark, "-e", untrackedMark, p).Output()
		if len(out) > 0 {
			t.Errorf("an ignored or untracked file reached the store: %s", out)
		}
	}

	// A key file git tracks, or a text literal in a tracked fleet.star,
	// is copied with the flake: a warning with the secret's position.
	write("deploy/fleet.star", `host(name = "a", target_host = "a", keys = [secret("/run/keys/wifi", file = "wifi.key"),
    secret("/run/keys/pin", text = "4711")], nixos = nixos_system())
`)
	git("add", "-f", "deploy/wifi.key")
	r = fleet(t, "check", file)
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		`fleet.star:1:51: secret("/run/keys/wifi"): its file ` + filepath.Join(dir, "wifi.key") + " lies in the flake " + dir,
		`fleet.star:2:11: secret("/run/keys/pin"): its text is written in `,
		"git+file://" + repo,
		`command = ["sops", "-d", ...]`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("check's warnings lack %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "4711") {
		t.Errorf("a warning shows the secret:\n%s", r.stderr)
	}

	// A new flake git does not know: refused before any host is touched.
	write("other/flake.nix", `{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`+"\n")
	write("other/fleet.star", `host(name = "a", target_host = "a", nixos = nixos_system())`+"\n")
	r = fleet(t, runArgs(l, filepath.Join(repo, "other", "fleet.star"))...)
	if r.code != 2 || !strings.Contains(r.stderr, filepath.Join(repo, "other", "flake.nix")+" is not tracked by git") ||
		!strings.Contains(r.stderr, "git -C "+repo+" add other/flake.nix") {
		t.Errorf("untracked flake.nix: exit %d\n%s", r.code, r.stderr)
	}
}
