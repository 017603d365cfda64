package e2e

import (
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestUnchangedHostsLeftAlone: redeploying what the hosts already run
// switches nothing — no switch-to-configuration, no new generation, no
// dead-man window — and the summary says unchanged; --reactivate
// switches them again.
func TestUnchangedHostsLeftAlone(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b"}})
	file := fleetDir(t, l, "1.0", nil)
	if r := fleet(t, runArgs(l, file)...); r.code != 0 {
		t.Fatalf("first deploy: exit %d\n%s", r.code, r.stderr)
	}
	before := map[string]int{}
	gens := map[string]string{}
	// An activation session makes its state directory, /run/fleet/RUN-HOST,
	// even when it finds the host unchanged; after a push that found the
	// host running the closure, fleet opens no session at all.
	sessions := func(h *lab.Host) string { return exec(t, h, "ls -d /run/fleet/*-"+h.Name+" | wc -l") }
	for _, h := range l.Hosts {
		before[h.Name] = activations(t, h)
		gens[h.Name] = exec(t, h, "readlink /nix/var/nix/profiles/system")
		if n := sessions(h); n != "1" {
			t.Fatalf("%s: %s activation sessions after the first deploy, want 1", h.Name, n)
		}
	}

	r := fleet(t, runArgs(l, file)...)
	if r.code != 0 {
		t.Fatalf("redeploy: exit %d\n%s", r.code, r.stderr)
	}
	evs := events(t, r.stdout)
	last := evs[len(evs)-1]
	if last.Event != "summary" || len(last.Changed) != 0 {
		t.Errorf("summary changed = %v, want none", last.Changed)
	}
	for _, h := range l.Hosts {
		if n := activations(t, h); n != before[h.Name] {
			t.Errorf("%s: switch-to-configuration ran again (%d → %d activations)", h.Name, before[h.Name], n)
		}
		if g := exec(t, h, "readlink /nix/var/nix/profiles/system"); g != gens[h.Name] {
			t.Errorf("%s: profile %s → %s", h.Name, gens[h.Name], g)
		}
		if n := sessions(h); n != "1" {
			t.Errorf("%s: %s activation sessions after the redeploy, want still 1", h.Name, n)
		}
	}
	if strings.Contains(r.stdout, "fleet-confirm") {
		t.Errorf("an unchanged host was confirmed")
	}

	r = fleet(t, runArgs(l, file, "--reactivate")...)
	if r.code != 0 {
		t.Fatalf("--reactivate: exit %d\n%s", r.code, r.stderr)
	}
	for _, h := range l.Hosts {
		if n := activations(t, h); n != before[h.Name]+1 {
			t.Errorf("%s: --reactivate ran %d activations, want %d", h.Name, n, before[h.Name]+1)
		}
		if n := sessions(h); n != "2" {
			t.Errorf("%s: %s activation sessions after --reactivate, want 2", h.Name, n)
		}
	}
}
