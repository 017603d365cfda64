package localnix

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nixconf"
)

func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }

// TestDiagnose feeds Nix's own messages (as Nix 2.8 and later print them)
// and checks the problem named and that each comes with a fix.
func TestDiagnose(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, log, what, fix string
	}{
		{"build users", "warning: the group 'nixbld' specified in 'build-users-group' does not exist\nthese 2 derivations will be built:\nerror: the group 'nixbld' specified in 'build-users-group' does not exist\n",
			"group 'nixbld' (nix.conf's build-users-group) does not exist", "sudo groupadd -r nixbld"},
		{"no lock file", "error: flake 'path:" + dir + "' requires lock file changes but they're not allowed due to '--no-update-lock-file'\n(use '--show-trace' to show detailed location information)\n",
			dir + " has no flake.lock", "flake lock " + dir},
		{"no lock file, git work tree", "error: flake 'git+file:///repo?dir=sub%20dir' requires lock file changes but they're not allowed due to '--no-update-lock-file'\n",
			"/repo/sub dir has no flake.lock", "flake lock '/repo/sub dir'"},
		{"feature off", "error: experimental Nix feature 'nix-command' is disabled; use '--extra-experimental-features nix-command' to override\n",
			"experimental feature 'nix-command' off", "experimental-features = nix-command flakes"},
		{"no daemon", "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': No such file or directory\n",
			"nix-daemon is not running", "nix-daemon.socket"},
		{"store not writable", "error: could not set permissions on '/nix/var/nix/profiles/per-user' to 755: Operation not permitted\n",
			"cannot write the Nix store", "nix-daemon.socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Diagnose(tc.log)
			if p == nil {
				t.Fatalf("Diagnose = nil, want %q", tc.what)
			}
			if !strings.Contains(p.What, tc.what) || !strings.Contains(p.Fix, tc.fix) {
				t.Errorf("Diagnose =\n  %s\n  fix: %s\nwant what ~ %q, fix ~ %q", p.What, p.Fix, tc.what, tc.fix)
			}
			if strings.Contains(p.What+p.Fix, "\n") {
				t.Errorf("not one line each: %q", p.Error())
			}
		})
	}
	// A stale lock file (it exists, but lacks an input) is named so.
	os.WriteFile(filepath.Join(dir, "flake.lock"), []byte("{}"), 0o644)
	if p := Diagnose("error: flake 'path:" + dir + "?narHash=x' requires lock file changes but they're not allowed"); p == nil || !strings.Contains(p.What, "flake.lock lacks inputs") {
		t.Errorf("stale lock: %v", p)
	}
	// Failures of the build itself are not this machine's problem.
	for _, log := range []string{
		"error: builder for '/nix/store/x.drv' failed with exit code 1",
		"error: attribute 'foo' missing\n       at /tmp/f/flake.nix:3:5:",
		"",
	} {
		if p := Diagnose(log); p != nil {
			t.Errorf("Diagnose(%q) = %v, want nil", log, p)
		}
	}
}

func writeFlake(t *testing.T, lock bool) string {
	t.Helper()
	dir := t.TempDir()
	flake := `{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
  inputs.sops-nix.url = "github:Mic92/sops-nix";
  outputs = { self, nixpkgs, sops-nix }: { };
}
`
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	if lock {
		os.WriteFile(filepath.Join(dir, "flake.lock"), []byte(`{"nodes": {"root": {}}, "root": "root", "version": 7}`), 0o644)
	}
	return dir
}

// TestPreflight runs the checks against the real Nix of this machine,
// made to fail the way a fresh machine does.
func TestPreflight(t *testing.T) {
	labtest.RequireNix(t)
	ctx := context.Background()
	locked, lockless := writeFlake(t, true), writeFlake(t, false)

	if err := Preflight(ctx, Options{Flakes: []string{locked, "github:owner/repo"}}); err != nil {
		t.Errorf("locked flake: %v", err)
	}
	err := Preflight(ctx, Options{Flakes: []string{lockless}})
	if p, ok := As(err); !ok || p.What != lockless+" has no flake.lock (inputs nixpkgs, sops-nix); fleet deploys what is locked and never writes the lock file itself" {
		t.Errorf("lockless flake: %v", err)
	}
	// --override-input of some inputs leaves the others to lock.
	err = Preflight(ctx, Options{Flakes: []string{lockless}, Overrides: map[string]string{"nixpkgs": "/x"}})
	if p, ok := As(err); !ok || !strings.Contains(p.What, "(inputs sops-nix)") {
		t.Errorf("lockless flake, nixpkgs overridden: %v", err)
	}
	// Every input overridden: nothing needs locking (the demo's homelab).
	if err := Preflight(ctx, Options{Flakes: []string{lockless}, Overrides: map[string]string{"nixpkgs": "/x", "sops-nix": "/y"}}); err != nil {
		t.Errorf("lockless flake, all inputs overridden: %v", err)
	}

	t.Run("no build users", func(t *testing.T) {
		if os.Geteuid() != 0 {
			labtest.Skip(t, "build users matter to root's Nix only; make test runs as root")
		}
		t.Setenv("NIX_CONFIG", "build-users-group = fleet-no-such-group")
		err := Preflight(ctx, Options{Flakes: []string{locked}})
		if p, ok := As(err); !ok || !strings.HasPrefix(p.What, "this machine's Nix cannot build: group 'fleet-no-such-group'") {
			t.Errorf("Preflight = %v", err)
		}
	})
	t.Run("not installed", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		err := Preflight(ctx, Options{Flakes: []string{locked}})
		if p, ok := As(err); !ok || !strings.HasPrefix(p.What, "Nix is not installed on this machine (no nix on PATH)") {
			t.Errorf("Preflight = %v", err)
		}
	})
}

// TestUntrackedFlake: a flake.nix git does not track is this machine's
// problem, with the git add that fixes it, for a host's flake and for an
// --override-input directory alike.
func TestUntrackedFlake(t *testing.T) {
	repo := t.TempDir()
	os.WriteFile(filepath.Join(repo, "flake.nix"), []byte("{ outputs = _: { }; }\n"), 0o644)
	if out, err := exec.Command("git", "-C", repo, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	p := checkTracked(repo)
	if p == nil || !strings.Contains(p.What, "flake.nix is not tracked by git") || p.Fix != "git -C "+repo+" add flake.nix" {
		t.Errorf("checkTracked = %v", p)
	}
	if p := checkTracked(t.TempDir()); p != nil {
		t.Errorf("outside git: %v", p)
	}
}
