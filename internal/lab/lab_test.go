package lab_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

const sshBin = "/usr/bin/ssh"

// ssh runs the real OpenSSH client with the lab's ssh_config.
func ssh(t *testing.T, l *lab.Lab, stdin []byte, target string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := append([]string{"-F", l.SSHConfig, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", target}, args...)
	cmd := exec.CommandContext(ctx, sshBin, a...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustSSH(t *testing.T, l *lab.Lab, target string, args ...string) string {
	t.Helper()
	out, err := ssh(t, l, nil, target, args...)
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", target, args, err, out)
	}
	return out
}

func TestLab(t *testing.T) {
	labtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	names := []string{"envy", "lenovo", "rpi4-a"}
	t0 := time.Now()
	l, err := lab.Start(ctx, lab.Options{Hosts: names, Aliases: map[string]string{"10.0.0.10": "envy"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Logf("3-host lab started in %v (dir %s)", time.Since(t0).Round(time.Millisecond), l.Dir)

	for i, h := range l.Hosts {
		if h.Name != names[i] || h.Addr != fmt.Sprintf("127.0.0.%d", i+2) || h.Port != 22 {
			t.Errorf("host %d = %s %s:%d", i, h.Name, h.Addr, h.Port)
		}
		if !strings.HasPrefix(h.HostKey, "ssh-ed25519 AAAA") {
			t.Errorf("host %s key %q", h.Name, h.HostKey)
		}
		if l.Host(h.Name) != h {
			t.Errorf("Host(%q) wrong", h.Name)
		}
	}
	if l.Host("nope") != nil {
		t.Error("Host(nope) != nil")
	}

	t.Run("phase1", func(t *testing.T) {
		for _, h := range l.Hosts {
			for _, user := range []string{"root", "nixos", "ops"} {
				t.Run("login/"+user+"@"+h.Name, func(t *testing.T) {
					t.Parallel()
					out := mustSSH(t, l, user+"@"+h.Name, "id -un; hostname")
					if want := user + "\n" + h.Name; out != want {
						t.Errorf("got %q, want %q", out, want)
					}
				})
			}
			t.Run("sudo/"+h.Name, func(t *testing.T) {
				t.Parallel()
				mustSSH(t, l, "nixos@"+h.Name, "sudo -n true")
				if out := mustSSH(t, l, "nixos@"+h.Name, "sudo -n id -u"); out != "0" {
					t.Errorf("sudo -n id -u = %q", out)
				}
			})
		}

		t.Run("ops-sudo-password", func(t *testing.T) {
			t.Parallel()
			if out, err := ssh(t, l, nil, lab.OpsUser+"@lenovo", "sudo -n true"); err == nil || !strings.Contains(out, "password is required") {
				t.Errorf("ops: sudo -n true: %q %v, want a password to be required", out, err)
			}
			out, err := ssh(t, l, []byte(lab.OpsPassword+"\n"), lab.OpsUser+"@lenovo", "sudo -S -p '' id -u")
			if err != nil || out != "0" {
				t.Errorf("ops: sudo -S id -u with the password: %q %v", out, err)
			}
		})

		t.Run("alias", func(t *testing.T) {
			t.Parallel()
			if out := mustSSH(t, l, "root@10.0.0.10", "hostname"); out != "envy" {
				t.Errorf("alias reached %q", out)
			}
		})

		t.Run("nix-isolation", func(t *testing.T) {
			t.Parallel()
			mustSSH(t, l, "root@envy", "echo from-envy > /nix/x")
			if out, err := ssh(t, l, nil, "root@lenovo", "test -e /nix/x && echo visible || echo absent"); err != nil || out != "absent" {
				t.Errorf("lenovo /nix/x: %q %v", out, err)
			}
			if _, err := os.Stat("/nix/x"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("deployer /nix/x: %v", err)
			}
			if b, err := os.ReadFile(l.Host("envy").Root + "/nix/x"); err != nil || string(b) != "from-envy\n" {
				t.Errorf("envy Root/nix/x: %q %v", b, err)
			}
			out, err := l.Host("envy").Exec(ctx, "cat /nix/x; hostname; test -d /nix/var/nix/profiles && echo profiles; stat -c %A /tmp")
			if err != nil || out != "from-envy\nenvy\nprofiles\ndrwxrwxrwt\n" {
				t.Errorf("Exec: %q %v", out, err)
			}
		})

		t.Run("private-netns", func(t *testing.T) {
			t.Parallel()
			if !lab.InPrivateNetns() {
				t.Fatal("not in a private netns")
			}
			start := time.Now()
			c, err := net.DialTimeout("tcp", "10.0.0.10:22", 3*time.Second)
			if err == nil {
				c.Close()
				t.Fatal("connect to 10.0.0.10:22 succeeded")
			}
			if !errors.Is(err, syscall.ENETUNREACH) || time.Since(start) > time.Second {
				t.Errorf("connect to 10.0.0.10:22: %v after %v, want immediate ENETUNREACH", err, time.Since(start))
			}
		})

		t.Run("current-system", func(t *testing.T) {
			t.Parallel()
			h := l.Host("lenovo")
			if cs, err := h.CurrentSystem(); err != nil || cs != "" {
				t.Fatalf("CurrentSystem before = %q %v", cs, err)
			}
			if out, err := h.Exec(ctx, "ln -s /nix/store/00000000000000000000000000000000-nixos-system /run/current-system"); err != nil {
				t.Fatal(out, err)
			}
			if cs, err := h.CurrentSystem(); err != nil || cs != "/nix/store/00000000000000000000000000000000-nixos-system" {
				t.Fatalf("CurrentSystem = %q %v", cs, err)
			}
			if cs, _ := l.Host("envy").CurrentSystem(); cs != "" {
				t.Errorf("envy CurrentSystem = %q", cs)
			}
		})

		t.Run("nix-import", func(t *testing.T) {
			t.Parallel()
			src := filepath.Join(t.TempDir(), "fleet-lab-probe")
			if err := os.WriteFile(src, []byte(fmt.Sprintf("probe %d\n", time.Now().UnixNano())), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("nix-store", "--add", src).CombinedOutput()
			if err != nil {
				t.Fatalf("nix-store --add: %v\n%s", err, out)
			}
			path := strings.TrimSpace(string(out))
			out, err = exec.Command("sh", "-c", `nix-store --export $(nix-store -qR "$1")`, "sh", path).Output()
			if err != nil {
				t.Fatalf("nix-store --export: %v", err)
			}
			nar := out
			// As root, and as nixos through sudo (what a deploy does).
			for _, c := range []struct{ target, prefix string }{{"root@rpi4-a", ""}, {"nixos@lenovo", "sudo -n "}} {
				if out, err := ssh(t, l, nar, c.target, c.prefix+"nix-store --import"); err != nil || out != path {
					t.Fatalf("%s: import: %v\n%s", c.target, err, out)
				}
				mustSSH(t, l, c.target, c.prefix+"nix-store --verify-path "+path)
			}
			// Without sudo, nixos reaches the store through the host's nix-daemon.
			if out := mustSSH(t, l, "nixos@lenovo", "nix-store --check-validity "+path+" && echo valid"); out != "valid" {
				t.Errorf("nixos via nix-daemon: %q", out)
			}
			if out, err := ssh(t, l, nil, "root@envy", "test -e "+path+" && echo visible || echo absent"); err != nil || out != "absent" {
				t.Errorf("envy sees imported path: %q %v", out, err)
			}
		})
	})

	t.Run("phase2", func(t *testing.T) {
		t.Run("stop-start", func(t *testing.T) {
			t.Parallel()
			h := l.Host("lenovo")
			if err := h.StopSSHD(); err != nil {
				t.Fatal(err)
			}
			c, err := net.DialTimeout("tcp", h.Addr+":22", 2*time.Second)
			if err == nil {
				c.Close()
				t.Fatal("port still open after StopSSHD")
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("after StopSSHD: %v, want connection refused", err)
			}
			if out, err := h.Exec(ctx, "hostname"); err != nil || out != "lenovo\n" {
				t.Errorf("Exec while stopped: %q %v", out, err)
			}
			if err := h.StartSSHD(); err != nil {
				t.Fatal(err)
			}
			if out := mustSSH(t, l, "nixos@lenovo", "hostname"); out != "lenovo" {
				t.Errorf("after StartSSHD: %q", out)
			}
		})
		t.Run("pause-resume", func(t *testing.T) {
			t.Parallel()
			h := l.Host("rpi4-a")
			if err := h.Pause(); err != nil {
				t.Fatal(err)
			}
			c, err := net.DialTimeout("tcp", h.Addr+":22", 2*time.Second)
			if err != nil {
				t.Fatalf("dial paused host: %v", err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			r := bufio.NewReader(c)
			if line, err := r.ReadString('\n'); err == nil {
				t.Fatalf("paused host answered %q", line)
			} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("paused host: %v, want a timeout", err)
			}
			if out, err := h.Exec(ctx, "hostname"); err != nil || out != "rpi4-a\n" {
				t.Errorf("Exec while paused: %q %v", out, err)
			}
			if err := h.Resume(); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH-") {
				t.Fatalf("after Resume: %q %v", line, err)
			}
			if out := mustSSH(t, l, "root@rpi4-a", "hostname"); out != "rpi4-a" {
				t.Errorf("after Resume: %q", out)
			}
		})
	})

	// Close tears everything down, idempotently.
	dir, root := l.Dir, l.Host("envy").Root
	tc := time.Now()
	defer func() { t.Logf("Close took %v", time.Since(tc).Round(time.Millisecond)) }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir %s left behind: %v", root, err)
	}
	for _, h := range l.Hosts {
		if c, err := net.DialTimeout("tcp", h.Addr+":22", time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening after Close", h.Name)
		}
	}
}

func TestStartErrors(t *testing.T) {
	labtest.Require(t)
	ctx := context.Background()
	for _, o := range []lab.Options{
		{},
		{Hosts: []string{"a", "a"}},
		{Hosts: []string{"bad name"}},
		{Hosts: []string{"a"}, Aliases: map[string]string{"x": "nope"}},
	} {
		if l, err := lab.Start(ctx, o); err == nil {
			l.Close()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}

// Two labs at once in one network namespace get different address blocks.
func TestConcurrentLabs(t *testing.T) {
	labtest.Require(t)
	ctx := context.Background()
	var labs []*lab.Lab
	for i := 0; i < 2; i++ {
		l, err := lab.Start(ctx, lab.Options{Hosts: []string{"same"}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		labs = append(labs, l)
	}
	if a, b := labs[0].Hosts[0].Addr, labs[1].Hosts[0].Addr; a == b {
		t.Fatalf("both labs on %s", a)
	}
	for _, l := range labs {
		if out := mustSSH(t, l, "root@same", "cat /etc/ssh/ssh_host_ed25519_key.pub"); !strings.HasPrefix(out, l.Hosts[0].HostKey) {
			t.Errorf("reached the wrong host: %q, want %q", out, l.Hosts[0].HostKey)
		}
	}
}

// TestSystemdStandin: with Options.SystemdRun a host finds the stand-in
// however it calls systemd-run or systemctl, and /run/systemd/system
// exists; without it, neither (the "no systemd" path). A unit started
// through SSH outlives the session.
func TestSystemdStandin(t *testing.T) {
	labtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	standin, _ := filepath.Abs("../../testdata/lab/systemd-run")
	l, err := lab.Start(ctx, lab.Options{Hosts: []string{"sd"}, SystemdRun: standin})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	plain, err := lab.Start(ctx, lab.Options{Hosts: []string{"nosd"}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	if !l.Host("sd").Systemd() || plain.Host("nosd").Systemd() {
		t.Errorf("Systemd(): %v, %v", l.Host("sd").Systemd(), plain.Host("nosd").Systemd())
	}
	const probe = `for p in "$(command -v systemd-run)" /usr/bin/systemd-run "$(command -v systemctl)"; do grep -q 'lab stand-in' "$p" && echo standin || echo real; done; test -d /run/systemd/system && echo dir || echo nodir`
	for _, tt := range []struct {
		l    *lab.Lab
		host string
		want string
	}{
		{l, "sd", "standin\nstandin\nstandin\ndir"},
		{plain, "nosd", "real\nreal\nreal\nnodir"},
	} {
		if got := mustSSH(t, tt.l, "root@"+tt.host, probe); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.host, got, tt.want)
		}
	}
	mustSSH(t, l, "root@sd", "systemd-run --quiet --unit=lab-probe sh -c 'echo $$ >/tmp/unit.pid; exec sleep 30'")
	if got := mustSSH(t, l, "root@sd", "systemctl is-active lab-probe"); got != "active" {
		t.Errorf("is-active after the session ended: %q", got)
	}
	// Outside the host, the deployer's own binaries are untouched.
	if data, _ := os.ReadFile("/usr/bin/systemd-run"); bytes.Contains(data, []byte("lab stand-in")) {
		t.Errorf("the stand-in leaked onto the deployer's /usr/bin/systemd-run")
	}
}
