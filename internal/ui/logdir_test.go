package ui_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestLogDir: one file per host with every line of that host (Nix's
// output while it was built included), and _run.log for the rest.
func TestLogDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "a.log"), []byte("a line of an earlier run\n"), 0o644)
	c := newClock()
	deploy(t, ui.Options{Out: io.Discard, Mode: ui.Plain, LogDir: dir, Now: c.Now}, &fakeExec{clock: c, fail: map[string]bool{"b": true}})
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	a, b := read("a.log"), read("b.log")
	for _, want := range []string{
		"14:02:03 a build    start        x86_64-linux .#nixosConfigurations.a\n",
		"14:02:03 a nix                   building '/nix/store/dddddddddddddddddddddddddddddddd-nixos-system-a-2.0.drv'...\n",
		"14:02:51 a push     ...    6.0s  1.0 MiB of 3.0 MiB (33%), 170.7 KiB/s\n",
		"a push     ok ",
		"a log                   switched\n",
		"a summary               changed, ooooooo-nixos-system-a-1.0 → nnnnnnn-nixos-system-a-2.0\n",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("a.log lacks %q:\n%s", want, a)
		}
	}
	// Nix builds a, b and c in one invocation: its output is in the
	// three files. Nothing else of b is in a's.
	if strings.Contains(a, "earlier run") || strings.Contains(a, "nixos-system-b-2.0 ") || strings.Contains(a, ":22") && strings.Contains(a, "10.9.0.2") {
		t.Errorf("a.log has lines of another run or host:\n%s", a)
	}
	for _, want := range []string{"b activate FAIL", "b activate | activation failed on purpose\n", "b summary               failed (activate)\n"} {
		if !strings.Contains(b, want) {
			t.Errorf("b.log lacks %q:\n%s", want, b)
		}
	}
	run := read(ui.RunLog)
	for _, want := range []string{"14:02:03 - run      start        run of 3 hosts\n", "laptop skip", "no target_host", "deploying 3 hosts", "summary        1m15s  failed"} {
		if !strings.Contains(run, want) {
			t.Errorf("%s lacks %q:\n%s", ui.RunLog, want, run)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "laptop.log")); err == nil {
		t.Errorf("a file for a host that was not selected")
	}
}

// TestLogDirError: a log directory that cannot be made is a usage
// error, before anything runs.
func TestLogDirError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	_, sel := load(t)
	if _, err := ui.New(ui.Options{Out: io.Discard, LogDir: filepath.Join(file, "logs")}, sel); err == nil || !strings.Contains(err.Error(), "--log-dir") {
		t.Errorf("err %v", err)
	}
}

// TestVerbose: -v shows Nix's output in the plain view; without it,
// only the script's log() messages.
func TestVerbose(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		c := newClock()
		var out bytes.Buffer
		deploy(t, ui.Options{Out: &out, Mode: ui.Plain, Verbose: verbose, Now: c.Now}, &fakeExec{clock: c})
		has := strings.Contains(out.String(), " nix                   building '/nix/store/")
		if has != verbose {
			t.Errorf("verbose %v: Nix output shown: %v\n%s", verbose, has, out.String())
		}
		if !strings.Contains(out.String(), "a log                   switched") {
			t.Errorf("verbose %v: log() not shown", verbose)
		}
	}
}

// TestTee: runtime.Fanout passes progress on, so a push behind it still shows
// its bytes.
func TestTee(t *testing.T) {
	c := newClock()
	var out, other bytes.Buffer
	prog, sel := load(t)
	r, _ := ui.New(ui.Options{Out: &out, Mode: ui.JSON, Now: c.Now}, sel)
	plan := ui.PlanLog{W: &other}
	_, err := prog.Deploy(t.Context(), sel, runtime.RunOptions{Executor: &fakeExec{clock: c}, Observer: runtime.Fanout(r, plan), Goal: "switch", Parallel: 2})
	r.Finish(err, false)
	if !strings.Contains(out.String(), `"event":"step_progress"`) || !strings.Contains(other.String(), "log a: switched") {
		t.Errorf("tee lost events:\n%s\n%s", out.String(), other.String())
	}
}
