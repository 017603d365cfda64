package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestDoctor runs fleet doctor against a lab of three hosts: a is fine,
// b's host key is not in known_hosts, c is down (its sshd stopped). Each
// gets its own verdict and fix, the checks after a failure are skipped,
// fleet exits 1, and nothing is recorded or run anywhere.
func TestDoctor(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	known, _ := os.ReadFile(l.KnownHosts)
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		if !strings.HasPrefix(line, "b,") {
			keep = append(keep, line)
		}
	}
	os.WriteFile(kh, []byte(strings.Join(keep, "\n")+"\n"), 0o644)
	cfg := sshConfig(t, l, func(line string) string {
		if strings.HasPrefix(line, "UserKnownHostsFile") {
			return "UserKnownHostsFile " + kh
		}
		return line
	})
	if err := l.Host("c").StopSSHD(); err != nil {
		t.Fatal(err)
	}
	file := fleetDir(t, l, "1.0", nil)
	args := []string{"doctor", "--ssh-config", cfg, "--override-input", "nixpkgs=" + filepath.Join(root, "testdata/mini-nixpkgs")}

	r := fleet(t, append(args, file)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	a, b, c := l.Host("a"), l.Host("b"), l.Host("c")
	key := l.ClientKey
	want := []string{
		"this machine",
		"  ✔ nix        nix-store (Nix) ", // version varies
		"  ✔ flakes     every local flake is locked (or all its inputs overridden)",
		"  ✔ agent      ",
		"a  root@" + a.Addr + ":22", // the endpoint as ssh_config resolves it
		"  ✔ keys       " + key,
		"  ✔ reachable  " + a.Addr + ":22 answers SSH",
		"  ✔ host-key   known",
		"  ✔ login      as root",
		"  ✔ nix        nix-store (Nix) ",
		"  ✔ space      /nix: ",
		"b  root@" + b.Addr + ":22", // the endpoint as ssh_config resolves it
		"  ✔ keys       " + key,
		"  ✔ reachable  " + b.Addr + ":22 answers SSH",
		"  ✘ host-key   " + b.Addr + " is not in " + kh,
		"               fix: if SHA256:",
		"  · login      not checked",
		"  · nix        not checked",
		"  · space      not checked",
		"c  root@" + c.Addr + ":22", // the endpoint as ssh_config resolves it
		"  ✔ keys       " + key,
		"  ✘ reachable  ",
		"               fix: is the host up, and sshd listening on " + c.Addr + ":22? (ssh -v -p 22 root@" + c.Addr + ")",
		"  · host-key   not checked",
		"  · login      not checked",
		"  · nix        not checked",
		"  · space      not checked",
		"",
		"2 problems: b host-key, c reachable",
	}
	got := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("doctor printed %d lines, want %d:\n%s", len(got), len(want), r.stdout)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d:\n got %q\nwant %q...", i+1, got[i], want[i])
		}
	}
	if !strings.Contains(r.stdout, "connection refused") {
		t.Errorf("c's failure does not say why:\n%s", r.stdout)
	}
	// Doctor records no host key (b stays unknown) and deploys nothing.
	if after, _ := os.ReadFile(kh); string(after) != strings.Join(keep, "\n")+"\n" {
		t.Errorf("known_hosts changed:\n%s", after)
	}
	if got := current(t, a); got != "" {
		t.Errorf("a runs %s after doctor", got)
	}

	// --json: the same verdicts, one object per check.
	r = fleet(t, append(args, "--json", "--on", "a,b", file)...)
	if r.code != 1 {
		t.Fatalf("--json: exit %d, want 1", r.code)
	}
	var doc struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Host, Check, Status, Detail, Fix string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	status := map[string]string{}
	for _, ck := range doc.Checks {
		status[ck.Host+"/"+ck.Check] = ck.Status
	}
	for k, v := range map[string]string{"/nix": "ok", "a/login": "ok", "a/space": "ok", "b/reachable": "ok", "b/host-key": "failed", "b/login": "skipped"} {
		if status[k] != v {
			t.Errorf("--json: %s is %q, want %q (all: %v)", k, status[k], v, status)
		}
	}
	if doc.OK || status["c/reachable"] != "" {
		t.Errorf("--json: ok=%v, c checked=%q", doc.OK, status["c/reachable"])
	}

	// A user whose sudo wants a password: sudo -n is the problem named.
	ops := filepath.Join(filepath.Dir(file), "ops.star")
	os.WriteFile(ops, []byte(`host(name = "a", target_host = "a", target_user = "ops", nixos = nixos_system(modules = []))`+"\n"), 0o644)
	r = fleet(t, append(args, ops)...)
	if r.code != 1 || !strings.Contains(r.stdout, "  ✔ login      as ops\n  ✘ sudo       ") ||
		!strings.Contains(r.stdout, "fix: let ops run sudo without a password (NOPASSWD in sudoers), or deploy with --ask-sudo-password") {
		t.Errorf("ops: exit %d\n%s", r.code, r.stdout)
	}
}
