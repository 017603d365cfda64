package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// targetsInventory writes a fleet.star with hosts h0, h1, ... whose
// targets are the given ssh_config names, and returns its path.
func targetsInventory(t *testing.T, targets ...string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	var b strings.Builder
	for i, target := range targets {
		fmt.Fprintf(&b, "host(name = \"h%d\", target_host = %q, attr = \".#nixosConfigurations.h%d\")\n", i, target, i)
	}
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(b.String()), 0o644)
	return file
}

// hostBlock is an ssh_config block for a lab host's address under another
// name, with the lab's key and known_hosts.
func hostBlock(l *lab.Lab, name string, h *lab.Host, extra ...string) string {
	lines := []string{
		"Host " + name,
		"  HostName " + h.Addr,
		"  IdentityFile " + l.ClientKey,
		"  IdentitiesOnly yes",
		"  UserKnownHostsFile " + l.KnownHosts,
		"  GlobalKnownHostsFile /dev/null",
		"  StrictHostKeyChecking yes",
	}
	for _, e := range extra {
		lines = append(lines, "  "+e)
	}
	return strings.Join(lines, "\n") + "\n"
}

// peerScript runs on the target: it prints the SSH connection as sshd
// sees it, and the mount namespace of the process at the other end of that
// TCP connection (all lab hosts share one network and PID namespace, so
// ss sees the peer's socket and its process): the deployer's for a direct
// connection, the jump host's sshd's when it came through a jump host.
const peerScript = `echo "conn=$SSH_CONNECTION"
set -- $SSH_CONNECTION
pid=$(ss -Htnp state established src "$1:$2" dst "$3:$4" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
echo "peer=$(readlink /proc/$pid/ns/mnt) $(cat /proc/$pid/comm)"`

// TestProxyJump reaches c through a (`ProxyJump a`) and through a then b
// (`ProxyJump a,b`) with fleet exec, and proves the path: the TCP
// connection c's sshd serves comes from a's (b's) sshd, not from fleet.
func TestProxyJump(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}, NoNixDaemon: true})
	a, b, c := l.Host("a"), l.Host("b"), l.Host("c")
	cfg := sshConfig(t, l, func(line string) string {
		if line == "Host c" {
			return line + "\n  ProxyJump a"
		}
		return line
	})
	data, _ := os.ReadFile(cfg)
	data = append([]byte(hostBlock(l, "c2", c, "ProxyJump a,b")+hostBlock(l, "cdirect", c)), data...)
	os.WriteFile(cfg, data, 0o644)

	file := targetsInventory(t, "c", "c2", "cdirect")
	r := fleet(t, "exec", "--ssh-config", cfg, file, "--", "sh", "-c", peerScript)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mntNS := func(h *lab.Host) string { return exec(t, h, "readlink /proc/self/ns/mnt") }
	self, _ := os.Readlink("/proc/self/ns/mnt")
	connRE := regexp.MustCompile(`^127\.0\.0\.1 \d+ ` + regexp.QuoteMeta(c.Addr) + ` 22$`)
	for _, want := range []struct{ host, via, peer string }{
		{"h0", "a", mntNS(a) + " sshd"},
		{"h1", "a,b", mntNS(b) + " sshd"},
		{"h2", "nothing", self + " "},
	} {
		var conn, peer string
		for _, line := range strings.Split(r.stdout, "\n") {
			if v, ok := strings.CutPrefix(line, want.host+" | conn="); ok {
				conn = v
			}
			if v, ok := strings.CutPrefix(line, want.host+" | peer="); ok {
				peer = v
			}
		}
		if !connRE.MatchString(conn) {
			t.Errorf("%s: SSH_CONNECTION %q, want a connection to c (%s:22)", want.host, conn, c.Addr)
		}
		if !strings.HasPrefix(peer, want.peer) {
			t.Errorf("%s (via %s): c's peer is %q, want %q", want.host, want.via, peer, want.peer)
		}
	}
}

// TestProxyJumpRefusals: a jump host whose key is not known is refused,
// naming it, and nothing runs on the target; a ProxyJump loop is an error
// before anything is dialled.
func TestProxyJumpRefusals(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "c"}, NoNixDaemon: true})
	a, c := l.Host("a"), l.Host("c")
	// known_hosts without a's key.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	known, _ := os.ReadFile(l.KnownHosts)
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		if !strings.HasPrefix(line, "a,") {
			keep = append(keep, line)
		}
	}
	os.WriteFile(kh, []byte(strings.Join(keep, "\n")+"\n"), 0o644)
	cfg := sshConfig(t, l, func(line string) string {
		switch {
		case line == "Host c":
			return line + "\n  ProxyJump a"
		case strings.HasPrefix(line, "UserKnownHostsFile"):
			return "UserKnownHostsFile " + kh
		}
		return line
	})
	file := targetsInventory(t, "c")
	r := fleet(t, "exec", "--ssh-config", cfg, file, "--", "touch", "/tmp/ran")
	out := r.stdout + r.stderr
	if r.code != 1 || !strings.Contains(out, "via jump host a") || !strings.Contains(out, "host key of "+a.Addr+" is not known") {
		t.Fatalf("want a refusal naming jump host a; exit %d\n%s", r.code, out)
	}
	if exec(t, c, "test -e /tmp/ran && echo ran || echo no") != "no" {
		t.Error("the command ran on c")
	}

	// a jumps through c, c through a.
	cfg = sshConfig(t, l, func(line string) string {
		switch line {
		case "Host c":
			return line + "\n  ProxyJump a"
		case "Host a":
			return line + "\n  ProxyJump c"
		}
		return line
	})
	r = fleet(t, "exec", "--ssh-config", cfg, file, "--", "true")
	if out := r.stdout + r.stderr; r.code == 0 || !strings.Contains(out, "ProxyJump loop: c -> a -> c") {
		t.Fatalf("want a loop error; exit %d\n%s", r.code, out)
	}
}
