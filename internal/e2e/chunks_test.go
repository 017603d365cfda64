package e2e

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/shell"
)

// TestEvalChunks deploys five hosts with --eval-limit 2: three evaluator
// processes (nix-build), of 2, 2 and 1 hosts, counted by a nix-build on
// PATH that logs how many hosts (-A) each invocation got before running
// the real one; every host gets its own system, the build steps come in
// program order, and status evaluates in chunks too.
func TestEvalChunks(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c", "d", "e"}})
	shim, log := t.TempDir(), filepath.Join(t.TempDir(), "evaluators")
	for _, prog := range []string{"nix-build", "nix-instantiate"} {
		real, err := osexec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\nn=0\nfor a in \"$@\"; do [ \"$a\" = -A ] && n=$((n+1)); done\necho \"" + prog + " $n\" >>" + shell.Quote(log) + "\nexec " + shell.Quote(real) + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(shim, prog), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", shim+":"+os.Getenv("PATH"))
	file := fleetDir(t, l, "1.0", nil)

	r := fleet(t, runArgs(l, file, "--eval-limit", "2")...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if got := evaluators(t, log, "nix-build"); !slices.Equal(got, []string{"1", "2", "2"}) {
		t.Errorf("nix-build processes got %v hosts each, want 2, 2 and 1", got)
	}
	evs := events(t, r.stdout)
	sys := closures(evs)
	var order []string
	for _, ev := range evs {
		if ev.Event == "step_start" && ev.Step != nil && ev.Step.Action == "build" {
			order = append(order, ev.Step.Host)
		}
	}
	if strings.Join(order, ",") != "a,b,c,d,e" {
		t.Errorf("build steps in order %v", order)
	}
	for _, h := range l.Hosts {
		if got := current(t, h); got != sys[h.Name] || !strings.HasSuffix(got, "-nixos-system-"+h.Name+"-1.0") {
			t.Errorf("%s runs %q, want its own system %q", h.Name, got, sys[h.Name])
		}
	}

	os.Remove(log)
	r = fleet(t, "status", "--ssh-config", l.SSHConfig, "--override-input", "nixpkgs="+filepath.Join(root, "testdata/mini-nixpkgs"), "--eval-limit", "3", file)
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := evaluators(t, log, "nix-instantiate"); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("status: nix-instantiate processes got %v hosts each, want 3 and 2", got)
	}
}

// evaluators are the host counts the logged invocations of prog got,
// sorted; invocations without hosts are not evaluators of hosts.
func evaluators(t *testing.T, log, prog string) []string {
	t.Helper()
	data, _ := os.ReadFile(log)
	var counts []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if n, ok := strings.CutPrefix(line, prog+" "); ok && n != "0" { // 0: the preflight's look at flake.nix
			counts = append(counts, n)
		}
	}
	slices.Sort(counts)
	return counts
}
