package e2e

import (
	"context"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/journal"
	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestKillMidRollout SIGKILLs fleet while the second of four hosts
// activates: afterwards every host runs exactly its old or its new
// system (profile and running system agree), and the journal, intact,
// says which: a switched, b started and has no outcome, c and d never
// started.
func TestKillMidRollout(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c", "d"}})
	v1 := deployAll(t, l, "1.0")
	slow := `{"fleet": {"test": {"activationDelay": 2, "postActivation": "kill -CONT $(cat /run/sshd.pid) 2>/dev/null || true"}}}`
	file := rolloutDir(t, l, "2.0", map[string]string{"a": slow, "b": slow, "c": slow, "d": slow}, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    parallel(lambda h: push(h, closures[h.name]), ctx.hosts)
    rolling(ctx.hosts, lambda h: activate(h, closures[h.name]), batch = 1)
`)
	state := t.TempDir()
	before := exec(t, l.Host("b"), "ls /run/fleet | wc -l")
	cmd := osexec.Command(binary(t), append(runArgs(l, file), "--state-dir", state)...)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if o, _ := l.Host("b").Exec(context.Background(), "ls /run/fleet | wc -l"); strings.TrimSpace(o) != before {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("b never started activating")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	v2 := closures(events(t, out.String()))
	time.Sleep(3 * time.Second) // b's detached activation ends on its own
	for _, h := range l.Hosts {
		cur := current(t, h)
		if cur != v1[h.Name] && cur != v2[h.Name] {
			t.Errorf("%s runs %s: neither its old nor its new system", h.Name, cur)
		}
		if prof := exec(t, h, "readlink -f /nix/var/nix/profiles/system"); prof != cur {
			t.Errorf("%s is between generations: profile %s, running %s", h.Name, prof, cur)
		}
	}
	recs, err := journal.Read(state)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range recs {
		if r.Run != recs[len(recs)-1].Run {
			continue
		}
		got[r.Host] = append(got[r.Host], r.Event+":"+r.Result)
	}
	if strings.Join(got["a"], ",") != "activating:,result:switched" || strings.Join(got["b"], ",") != "activating:" || len(got["c"])+len(got["d"]) != 0 {
		t.Errorf("journal of the killed run: %v", got)
	}
	if current(t, l.Host("a")) != v2["a"] || current(t, l.Host("c")) != v1["c"] {
		t.Errorf("a should run its new system, c its old one")
	}
	r := fleet(t, "history", "--state-dir", state, "--on", "b", "--last", "1")
	if !strings.Contains(r.stdout, "no outcome (killed?)") {
		t.Errorf("history for b:\n%s", r.stdout)
	}
}
