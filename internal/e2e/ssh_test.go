package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"golang.org/x/crypto/ssh"
)

// sshConfig writes a variant of the lab's ssh_config: edit maps each
// line (trimmed) to its replacement ("" drops it).
func sshConfig(t *testing.T, l *lab.Lab, edit func(line string) string) string {
	t.Helper()
	data, err := os.ReadFile(l.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if r := edit(strings.TrimSpace(line)); r != "" || strings.TrimSpace(line) == "" {
			out = append(out, r)
		}
	}
	file := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(file, []byte(strings.Join(out, "\n")), 0o644)
	return file
}

func keep(line string) string { return line }

// TestUnknownHostKey: a host missing from known_hosts is refused with
// the line that would trust it; --accept-new-host-keys records it.
func TestUnknownHostKey(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, nil, 0o644)
	cfg := sshConfig(t, l, func(line string) string {
		if strings.HasPrefix(line, "UserKnownHostsFile") {
			return "UserKnownHostsFile " + kh
		}
		return line
	})
	file := inventory(t, l, 1)
	r := fleet(t, "exec", "--ssh-config", cfg, file, "--", "touch", "/tmp/ran")
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "SHA256:") || !strings.Contains(r.stdout+r.stderr, "ssh-ed25519 ") {
		t.Fatalf("want a refusal with fingerprint and key line; exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if out := exec(t, l.Host("a"), "test -e /tmp/ran && echo ran || echo no"); out != "no" {
		t.Fatalf("a command ran on an unknown host")
	}
	r = fleet(t, "exec", "--accept-new-host-keys", "--ssh-config", cfg, file, "--", "touch", "/tmp/ran")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(kh)
	if !strings.Contains(string(data), strings.TrimSpace(l.Host("a").HostKey)) {
		t.Errorf("known_hosts now: %q", data)
	}
	// Known now: accepted without the flag.
	if r := fleet(t, "exec", "--ssh-config", cfg, file, "--", "true"); r.code != 0 {
		t.Errorf("exit %d after recording the key", r.code)
	}
}

// TestChangedHostKey: a host whose key differs from known_hosts is
// refused, loudly, naming the file and line, and nothing runs there.
func TestChangedHostKey(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	good, _ := os.ReadFile(l.KnownHosts)
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(good)), "\n") {
		if strings.HasPrefix(line, "a,") {
			line = strings.Fields(line)[0] + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		}
		lines = append(lines, line)
	}
	os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	cfg := sshConfig(t, l, func(line string) string {
		if strings.HasPrefix(line, "UserKnownHostsFile") {
			return "UserKnownHostsFile " + kh
		}
		return line
	})
	// Even with --accept-new-host-keys: a changed key is never accepted.
	r := fleet(t, "run", "--json", "--accept-new-host-keys", "--ssh-config", cfg,
		"--override-input", "nixpkgs="+filepath.Join(root, "testdata/mini-nixpkgs"), fleetDir(t, l, "1.0", nil))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	line := 1
	for i, l := range lines {
		if strings.HasPrefix(l, "a,") {
			line = i + 1
		}
	}
	msg := r.stderr
	if !strings.Contains(msg, "a: push failed") || !strings.Contains(msg, fmt.Sprintf("%s:%d", kh, line)) {
		t.Errorf("stderr does not name host, step, file:line:\n%s", msg)
	}
	a := l.Host("a")
	if activations(t, a) != 0 || exec(t, a, "ls /nix/store 2>/dev/null | wc -l") != "0" {
		t.Errorf("something reached a")
	}
	if got := current(t, l.Host("b")); got == "" {
		t.Errorf("b was not deployed")
	}
}

// TestAgentAuth: no identity file, only a key in a real ssh-agent.
func TestAgentAuth(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := osexec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("ssh-agent did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cfg := sshConfig(t, l, func(line string) string {
		if strings.HasPrefix(line, "IdentityFile") || strings.HasPrefix(line, "IdentitiesOnly") {
			return ""
		}
		return line
	})
	file := inventory(t, l, 1)
	t.Setenv("HOME", t.TempDir()) // no ~/.ssh/id_* to fall back on
	t.Setenv("SSH_AUTH_SOCK", sock)
	if r := fleet(t, "exec", "--ssh-config", cfg, file, "--", "true"); r.code != 1 {
		t.Fatalf("an empty agent authenticated: exit %d", r.code)
	}
	add := osexec.Command("ssh-add", l.ClientKey)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	if r := fleet(t, "exec", "--ssh-config", cfg, file, "--", "true"); r.code != 0 {
		t.Fatalf("agent auth: exit %d\n%s", r.code, r.stdout)
	}
}

// TestStalledHost: b's sshd is frozen (SIGSTOP): b times out after
// ConnectTimeout, a is not held up.
func TestStalledHost(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	cfg := sshConfig(t, l, func(line string) string {
		if strings.HasPrefix(line, "Port") {
			return line + "\n  ConnectTimeout 2"
		}
		return line
	})
	if err := l.Host("b").Pause(); err != nil {
		t.Fatal(err)
	}
	defer l.Host("b").Resume()
	start := time.Now()
	r := fleet(t, "exec", "--ssh-config", cfg, inventory(t, l, 2), "--", "hostname")
	took := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stdout, "h0 | a\n") || !strings.Contains(r.stdout, "unreachable: h1") {
		t.Fatalf("exit %d\n%s", r.code, r.stdout)
	}
	if took > 15*time.Second {
		t.Errorf("took %v; ConnectTimeout is 2s", took)
	}
}
