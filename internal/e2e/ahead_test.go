package e2e

import (
	"bufio"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestInterruptBeforePush: fleet run starts each host's push while it
// builds (the push session waits on the host for its closure, having
// done nothing). Interrupted before any push, the run ends at once with
// 130; no host changed, none received the new closure, and each still
// answers a deploy, which then changes it.
func TestInterruptBeforePush(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	v1 := deployAll(t, l, "1.0")
	file := rolloutDir(t, l, "2.0", nil, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    sleep(120)
    parallel(lambda h: push(h, closures[h.name]), ctx.hosts)
`)
	cmd := osexec.Command(binary(t), runArgs(l, file)...)
	cmd.Args[0] = "fleet"
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // until the sleep step starts: the build is done, the pushes wait
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), `"event":"step_start"`) && strings.Contains(sc.Text(), `"action":"sleep"`) {
			break
		}
	}
	interrupted := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	cmd.Wait()
	if d := time.Since(interrupted); d > 20*time.Second {
		t.Errorf("the run took %s to end after the interrupt", d)
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d, want 130\n%s\n%s", code, out.String(), errb.String())
	}
	v2 := closures(events(t, out.String()))
	for _, h := range l.Hosts {
		if got := current(t, h); got != v1[h.Name] {
			t.Errorf("%s runs %s, want %s", h.Name, got, v1[h.Name])
		}
		if v2[h.Name] == "" || v2[h.Name] == v1[h.Name] {
			t.Fatalf("%s: built %q, want a new closure", h.Name, v2[h.Name])
		}
		if o, err := h.Exec(t.Context(), "nix-store --check-validity "+v2[h.Name]); err == nil {
			t.Errorf("%s has %s, which was never pushed (%s)", h.Name, v2[h.Name], o)
		}
	}
	// The hosts took nothing from the ended sessions: a deploy changes them.
	r := fleet(t, runArgs(l, rolloutDir(t, l, "2.0", nil, ""))...)
	if r.code != 0 {
		t.Fatalf("deploy after the interrupt: exit %d\n%s", r.code, r.stderr)
	}
	for name, c := range closures(events(t, r.stdout)) {
		if got := current(t, l.Host(name)); got != c {
			t.Errorf("%s runs %s, want %s", name, got, c)
		}
	}
}
