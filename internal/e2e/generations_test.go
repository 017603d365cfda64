package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestGenerationsAndRollback deploys v1, v2, v3 to a and b: fleet
// generations lists three generations each, the last current and
// running. fleet rollback --on a takes a back to v2 (its profile's
// generation 2), --on b --to 1 takes b to v1 (a new generation 4 of that
// system); both are in fleet history as rolled back, and fleet
// generations shows the new current ones. Asking for a generation a host
// lacks fails that host, exit 1; rollback without --on is a usage error.
func TestGenerationsAndRollback(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	a, b := l.Host("a"), l.Host("b")
	var files []string
	var cls []map[string]string
	for _, v := range []string{"1.0", "2.0", "3.0"} {
		f := fleetDir(t, l, v, nil)
		r := fleet(t, runArgs(l, f)...)
		if r.code != 0 {
			t.Fatalf("v%s: exit %d\n%s", v, r.code, r.stderr)
		}
		files, cls = append(files, f), append(cls, closures(events(t, r.stdout)))
	}
	file := files[2]
	// The journal of this test's rollbacks alone: other tests roll back
	// hosts named a and b too.
	state := []string{"--state-dir", t.TempDir()}

	type gens []struct {
		Host        string `json:"host"`
		Error       string `json:"error"`
		Generations []struct {
			Number  int    `json:"number"`
			Date    string `json:"date"`
			Closure string `json:"closure"`
			Current bool   `json:"current"`
			Running bool   `json:"running"`
		} `json:"generations"`
	}
	list := func() gens {
		t.Helper()
		r := fleet(t, "generations", "--json", "--ssh-config", l.SSHConfig, file)
		var g gens
		if err := json.Unmarshal([]byte(r.stdout), &g); r.code != 0 || err != nil {
			t.Fatalf("generations: exit %d, %v", r.code, err)
		}
		return g
	}
	g := list()
	if len(g) != 2 {
		t.Fatalf("generations %+v", g)
	}
	for _, h := range g {
		if len(h.Generations) != 3 {
			t.Fatalf("%s: %+v", h.Host, h.Generations)
		}
		for i, gen := range h.Generations {
			last := i == 2
			if gen.Number != i+1 || gen.Closure != cls[i][h.Host] || gen.Current != last || gen.Running != last || gen.Date == "" {
				t.Errorf("%s: generation %d: %+v", h.Host, i+1, gen)
			}
		}
	}
	r := fleet(t, "generations", "--ssh-config", l.SSHConfig, "--on", "a", file)
	if r.code != 0 || !hasLines(r.stdout, []string{"HOST", "a     1 ", "a     2 ", "a     3* "}) || !strings.Contains(r.stdout, "current, running") {
		t.Errorf("generations text:\n%s", r.stdout)
	}

	// Rollback: a to the previous generation, b to generation 1.
	r = fleet(t, append(append([]string{"rollback", "--json", "--ssh-config", l.SSHConfig, "--on", "a"}, state...), file)...)
	if r.code != 0 || current(t, a) != cls[1]["a"] || current(t, b) != cls[2]["b"] {
		t.Fatalf("rollback --on a: exit %d, a runs %s, b %s", r.code, current(t, a), current(t, b))
	}
	last := events(t, r.stdout)
	if sum := last[len(last)-1]; sum.Event != "summary" || len(sum.Failed) != 0 || !strings.Contains(r.stdout, `"result":"rolled back"`) {
		t.Errorf("summary: %+v", sum)
	}
	r = fleet(t, append(append([]string{"rollback", "--ssh-config", l.SSHConfig, "--on", "b", "--to", "1"}, state...), file)...)
	if r.code != 0 || current(t, b) != cls[0]["b"] {
		t.Fatalf("rollback --on b --to 1: exit %d, b runs %s", r.code, current(t, b))
	}
	if got := exec(t, b, "readlink /nix/var/nix/profiles/system"); got != "system-4-link" {
		t.Errorf("b's profile -> %s, want a new generation 4", got)
	}
	g = list()
	for _, h := range g {
		want := map[string]int{"a": 2, "b": 4}[h.Host]
		for _, gen := range h.Generations {
			if gen.Current != (gen.Number == want) || gen.Running != (gen.Number == want) {
				t.Errorf("%s after rollback: %+v", h.Host, gen)
			}
		}
		if last := h.Generations[len(h.Generations)-1]; h.Host == "b" && (last.Number != 4 || last.Closure != cls[0]["b"]) {
			t.Errorf("b's newest generation %+v, want 4, of %s", last, cls[0]["b"])
		}
	}

	// The journal has both.
	r = fleet(t, append([]string{"history", "--json"}, state...)...)
	var hist []struct {
		Host, Result, Previous, Current string
		Generation                      int
	}
	if err := json.Unmarshal([]byte(r.stdout), &hist); err != nil {
		t.Fatal(err)
	}
	var rolled []string
	for _, e := range hist {
		if e.Result == "rolled-back" {
			rolled = append(rolled, e.Host)
			if e.Host == "a" && (e.Previous != cls[2]["a"] || e.Current != cls[1]["a"]) || e.Host == "b" && (e.Generation != 4 || e.Current != cls[0]["b"]) {
				t.Errorf("history entry %+v", e)
			}
		}
	}
	if strings.Join(rolled, ",") != "a,b" {
		t.Errorf("history: rolled back %v", rolled)
	}
	if r := fleet(t, append([]string{"history"}, state...)...); !strings.Contains(r.stdout, "rolled-back") {
		t.Errorf("history text:\n%s", r.stdout)
	}

	// A generation b lacks: b fails, exit 1, nothing changes.
	r = fleet(t, "rollback", "--ssh-config", l.SSHConfig, "--on", "b", "--to", "9", file)
	if r.code != 1 || !strings.Contains(r.stderr, "no system generation 9") || current(t, b) != cls[0]["b"] {
		t.Errorf("--to 9: exit %d\n%s", r.code, r.stderr)
	}
	if r := fleet(t, "rollback", "--ssh-config", l.SSHConfig, file); r.code != 2 || !strings.Contains(r.stderr, "--on") {
		t.Errorf("rollback without --on: exit %d\n%s", r.code, r.stderr)
	}
}
