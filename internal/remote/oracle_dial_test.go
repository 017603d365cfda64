package remote

// TestOracleConnect is the part of the oracle that resolving cannot show:
// for ProxyCommand, ProxyJump, user certificates (from a file and from the
// agent), a .pub IdentityFile whose key is in the agent and BindAddress,
// fleet (Resolve, then
// Dial) and the ssh binary connect to real lab sshds with the same config,
// and each sshd's log must show the same logins for both.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

func TestOracleConnect(t *testing.T) {
	labtest.Require(t)
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no ssh binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Hosts: []string{"jump", "target"}, NoNixDaemon: true,
		SSHDConfig: "LogLevel INFO\nTrustedUserCAKeys /etc/ssh/user_ca.pub\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	jump, target := l.Host("jump"), l.Host("target")

	// A user CA that the target trusts, and a key that is authorized only
	// through its certificate (CertificateFile, not KEY-cert.pub).
	dir := t.TempDir()
	keygen := func(args ...string) {
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	keygen("-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "ca"))
	keygen("-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "certkey"))
	keygen("-q", "-s", filepath.Join(dir, "ca"), "-I", "fleet-oracle", "-n", "root", filepath.Join(dir, "certkey.pub"))
	if err := os.Rename(filepath.Join(dir, "certkey-cert.pub"), filepath.Join(dir, "user-cert.pub")); err != nil {
		t.Fatal(err)
	}
	caPub, _ := os.ReadFile(filepath.Join(dir, "ca.pub"))
	for _, h := range l.Hosts {
		os.WriteFile(filepath.Join(h.Root, "etc/ssh/user_ca.pub"), caPub, 0o644)
	}

	// An agent that holds the lab key and the certified key, whose
	// IdentityFiles name only the public keys (the 1Password way).
	sock := filepath.Join(dir, "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer agentCmd.Process.Kill()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("ssh-agent did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	labPub, err := exec.Command("ssh-keygen", "-y", "-f", l.ClientKey).Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "lab.pub"), labPub, 0o644)
	for _, k := range []string{l.ClientKey, filepath.Join(dir, "certkey")} {
		add := exec.Command("ssh-add", k)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v: %s", err, out)
		}
	}

	cfgPath := filepath.Join(dir, "config")
	const boundAddr = "127.0.0.200" // the lab's network namespace has all of 127/8
	block := func(name string, h *lab.Host, key string, extra ...string) string {
		lines := []string{"Host " + name, "  HostName " + h.Addr, "  User root", "  IdentityFile " + key, "  IdentitiesOnly yes",
			"  UserKnownHostsFile " + l.KnownHosts, "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes", "  BatchMode yes"}
		for _, e := range extra {
			lines = append(lines, "  "+e)
		}
		return strings.Join(lines, "\n") + "\n"
	}
	cfg := block("viacommand", target, l.ClientKey, "HostKeyAlias "+target.Addr, fmt.Sprintf("ProxyCommand %s -F %s -W %%h:%%p jump", ssh, cfgPath)) +
		block("viajump", target, l.ClientKey, "ProxyJump jump") +
		block("jumpfirst", target, l.ClientKey, "ProxyJump jump", "ProxyCommand /bin/false") +
		block("certified", target, filepath.Join(dir, "certkey"), "CertificateFile "+filepath.Join(dir, "user-cert.pub")) +
		block("agentpub", target, filepath.Join(dir, "lab.pub"), "IdentityAgent "+sock) +
		block("agentcert", target, filepath.Join(dir, "certkey.pub"), "IdentityAgent "+sock, "CertificateFile "+filepath.Join(dir, "user-cert.pub")) +
		block("direct", target, l.ClientKey) +
		block("bound", target, l.ClientKey, "BindAddress "+boundAddr) +
		block("jump", jump, l.ClientKey)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")

	// logins counts the logins in h's sshd log, those by certificate and
	// those from boundAddr.
	logins := func(h *lab.Host) (n, cert, bound int) {
		b, _ := os.ReadFile(filepath.Join(h.Root, "sshd.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "Accepted publickey for root") {
				n++
				if strings.Contains(line, "CERT") {
					cert++
				}
				if strings.Contains(line, " from "+boundAddr+" ") {
					bound++
				}
			}
		}
		return n, cert, bound
	}
	type seen struct{ jump, target, cert, bound int }
	observe := func(connect func() error) (seen, error) {
		j0, _, _ := logins(jump)
		t0, c0, b0 := logins(target)
		err := connect()
		// sshd writes its log line before the session starts; give it a moment.
		time.Sleep(200 * time.Millisecond)
		j1, _, _ := logins(jump)
		t1, c1, b1 := logins(target)
		return seen{j1 - j0, t1 - t0, c1 - c0, b1 - b0}, err
	}
	for _, tc := range []struct {
		host string
		want seen
	}{
		{"viacommand", seen{jump: 1, target: 1}},
		{"viajump", seen{jump: 1, target: 1}},
		{"jumpfirst", seen{jump: 1, target: 1}},
		{"certified", seen{target: 1, cert: 1}},
		{"agentpub", seen{target: 1}},
		{"agentcert", seen{target: 1, cert: 1}},
		{"direct", seen{target: 1}},
		{"bound", seen{target: 1, bound: 1}},
	} {
		t.Run(tc.host, func(t *testing.T) {
			bySSH, err := observe(func() error {
				out, err := exec.Command(ssh, "-F", cfgPath, tc.host, "true").CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
			if err != nil || bySSH != tc.want {
				t.Fatalf("ssh: logins %+v, want %+v (err %v)", bySSH, tc.want, err)
			}
			byFleet, err := observe(func() error {
				e, err := Resolve(Options{ConfigFiles: []string{cfgPath}}, Target{Host: tc.host})
				if err != nil {
					return err
				}
				c, err := Dial(ctx, e)
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Output(ctx, "true")
				return err
			})
			if err != nil || byFleet != bySSH {
				t.Errorf("fleet: logins %+v, ssh's %+v (err %v)", byFleet, bySSH, err)
			}
		})
	}
}
