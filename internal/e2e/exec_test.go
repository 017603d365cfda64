package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// inventory writes a fleet.star of n hosts h0..h(n-1) whose targets are
// the lab hosts, round robin, and returns its path.
func inventory(t *testing.T, l *lab.Lab, n int) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { }; }\n"), 0o644)
	var b strings.Builder
	for i := 0; i < n; i++ {
		h := l.Hosts[i%len(l.Hosts)]
		fmt.Fprintf(&b, "host(name = \"h%d\", target_host = %q, tags = [%q], attr = \".#nixosConfigurations.h%d\")\n", i, h.Name, h.Name, i)
	}
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(b.String()), 0o644)
	return file
}

func TestExec(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	file := inventory(t, l, 2)
	r := fleet(t, "exec", "--ssh-config", l.SSHConfig, file, "--", "sh", "-c", `hostname; echo "$1" >&2; [ "$(hostname)" = a ]`, "sh", "it's $(not) `run`")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (b exits 1)", r.code)
	}
	for _, want := range []string{"h0 | a\n", "h1 | b\n", "h0 ! it's $(not) `run`\n", "2 hosts; exit 0: h0; exit 1: h1\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	// --on and --json.
	r = fleet(t, "exec", "--ssh-config", l.SSHConfig, "--on", "@b", "--json", file, "--", "cat", "/etc/hostname")
	var res []struct {
		Host     string `json:"host"`
		ExitCode int    `json:"exit_code"`
		Stdout   string `json:"stdout"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.stdout)
	}
	if len(res) != 1 || res[0].Host != "h1" || strings.TrimSpace(res[0].Stdout) != "b" {
		t.Errorf("results %+v", res)
	}
	// No command is a usage error.
	if r := fleet(t, "exec", file, "--"); r.code != 2 || !strings.Contains(r.stderr, "no command") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

// TestExecHundredTargets runs one command on 100 targets at once, all on
// one lab machine: 100 concurrent SSH connections.
func TestExecHundredTargets(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	file := inventory(t, l, 100)
	r := fleet(t, "exec", "--json", "-p", "100", "--ssh-config", l.SSHConfig, file, "--", "echo", "ok")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var res []struct {
		Host   string `json:"host"`
		Stdout string `json:"stdout"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 100 {
		t.Fatalf("%d results", len(res))
	}
	for _, x := range res {
		if x.Stdout != "ok\n" || x.Error != "" {
			t.Errorf("%s: %q %s", x.Host, x.Stdout, x.Error)
		}
	}
}

// TestExecInterrupted: Ctrl-C while the first of three hosts runs its
// command (-p 1). fleet stops that command and starts no other, exits
// 130, and says the hosts were interrupted, not that they are
// unreachable.
func TestExecInterrupted(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c"}})
	file := inventory(t, l, 3)
	cmd := osexec.Command(binary(t), "exec", "-p", "1", "--ssh-config", l.SSHConfig, file, "--", "sh", "-c", "touch /tmp/exec-started; exec sleep 61.25")
	cmd.Args[0] = "fleet"
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := l.Host("a")
	deadline := time.Now().Add(60 * time.Second)
	for exec(t, a, "test -e /tmp/exec-started && echo yes || echo no") != "yes" {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the command never started on a\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d, want 130\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "3 hosts; interrupted: h0, h1, h2\n") || strings.Contains(out.String()+errb.String(), "unreachable") {
		t.Errorf("summary:\n%s%s", out.String(), errb.String())
	}
	for _, h := range []string{"b", "c"} {
		if got := exec(t, l.Host(h), "test -e /tmp/exec-started && echo started || echo no"); got != "no" {
			t.Errorf("%s: the command started after the interrupt", h)
		}
	}
	// fleet stops the remote command (through the pid it reported); the
	// [s] keeps pgrep from finding itself.
	deadline = time.Now().Add(10 * time.Second)
	for exec(t, a, "pgrep -f '[s]leep 61.25' >/dev/null && echo running || echo stopped") != "stopped" {
		if time.Now().After(deadline) {
			t.Fatal("a: the interrupted command still runs")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
