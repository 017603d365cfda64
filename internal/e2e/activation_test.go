package e2e

// The fault suite of issue 14 ("never a half-changed host"): each case of
// "What happens today" as a test of the host's final state (current
// system, profile, boot entry, GC roots) and of what fleet and fleet
// history said. Every test runs on both activation paths: a host with
// systemd (the lab's stand-in systemd-run: the switch runs as a transient
// unit) and one without (setsid).

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// paths are the two ways a switch runs detached.
var paths = []struct {
	name string
	opts func(hosts ...string) lab.Options
	unit bool // the switch runs as a (stand-in) systemd unit
}{
	{"systemd", func(hosts ...string) lab.Options {
		return lab.Options{Hosts: hosts, SystemdRun: filepath.Join(root, "testdata/lab/systemd-run")}
	}, true},
	{"setsid", func(hosts ...string) lab.Options { return lab.Options{Hosts: hosts} }, false},
}

// bothPaths runs f once per activation path.
func bothPaths(t *testing.T, f func(t *testing.T, opts func(hosts ...string) lab.Options, unit bool)) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) { f(t, p.opts, p.unit) })
	}
}

// hostState is what a host runs and will boot.
type hostState struct {
	Current, Profile, Boot string
}

func stateOf(t *testing.T, h *lab.Host) hostState {
	t.Helper()
	return hostState{
		Current: current(t, h),
		Profile: exec(t, h, "readlink -f /nix/var/nix/profiles/system"),
		Boot:    exec(t, h, "readlink /nix/var/lab/boot/default || true"),
	}
}

// gcSafe checks the GC roots: the system the boot entry points at is not
// garbage (it has a profile generation).
func gcSafe(t *testing.T, h *lab.Host) {
	t.Helper()
	boot := exec(t, h, "readlink /nix/var/lab/boot/default || true")
	if boot == "" {
		return
	}
	dead := exec(t, h, "nix-store --gc --print-dead 2>/dev/null")
	if strings.Contains(dead, boot) {
		t.Errorf("%s: the boot entry's system %s is garbage (no profile generation keeps it)", h.Name, boot)
	}
}

// viaUnit checks which path the last activation of h took.
func viaUnit(t *testing.T, h *lab.Host, unit bool) {
	t.Helper()
	got := exec(t, h, "ls /run/systemd-standin/journal 2>/dev/null | grep -c fleet-switch || true") != "0"
	if got != unit {
		t.Errorf("%s: switch ran as a systemd unit: %v, want %v", h.Name, got, unit)
	}
}

// newFile returns a function that blocks until a file matching glob
// (on the deployer's side of a host's directories) exists that did not
// when newFile was called, and returns it.
func newFile(t *testing.T, glob string) func() string {
	t.Helper()
	before := map[string]bool{}
	old, _ := filepath.Glob(glob)
	for _, m := range old {
		before[m] = true
	}
	return func() string {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			ms, _ := filepath.Glob(glob)
			for _, m := range ms {
				if !before[m] {
					return m
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no new %s", glob)
		return ""
	}
}

// watched is a command's output, which a test can wait on.
type watched struct {
	mu   sync.Mutex
	b    strings.Builder
	seen chan struct{} // closed when want has been written
	want string
}

func (w *watched) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if w.want != "" && strings.Contains(w.b.String(), w.want) {
		close(w.seen)
		w.want = ""
	}
	return len(p), nil
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// startFleet starts the fleet binary. interrupted is closed once it
// said it stops gently (the first interrupt arrived); wait returns its
// exit code, stdout and stderr.
func startFleet(t *testing.T, args ...string) (p *os.Process, interrupted <-chan struct{}, wait func() (int, string, string)) {
	t.Helper()
	cmd := osexec.Command(binary(t), args...)
	var out strings.Builder
	errw := &watched{seen: make(chan struct{}), want: "letting the steps in flight finish"}
	cmd.Stdout, cmd.Stderr = &out, errw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd.Process, errw.seen, func() (int, string, string) {
		cmd.Wait()
		t.Logf("fleet %s\n-> exit %d\n%s\n%s", strings.Join(args, " "), cmd.ProcessState.ExitCode(), out.String(), errw.String())
		return cmd.ProcessState.ExitCode(), out.String(), errw.String()
	}
}

// history is `fleet history` of one host's last run in state.
func history(t *testing.T, state, host string) string {
	t.Helper()
	r := fleet(t, "history", "--state-dir", state, "--on", host, "--last", "1")
	return r.stdout
}

// TestSecondInterruptDuringActivation (case 1): a second SIGINT or a
// SIGTERM while a 6 s activation runs. fleet exits 130 having waited for
// the activation to end, and the host is consistent: for goal boot the
// profile and boot entry are the new system (a GC root), for switch
// without a dead-man window it runs the new system with its profile.
func TestSecondInterruptDuringActivation(t *testing.T) {
	bothPaths(t, func(t *testing.T, opts func(...string) lab.Options, unit bool) {
		for _, tt := range []struct {
			name    string
			goal    string
			confirm string
			signals []syscall.Signal
		}{
			{"boot, SIGINT twice", "boot", "", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}},
			{"switch confirm=False, SIGINT then SIGTERM", "switch", ", confirm = False", []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				l := startLab(t, opts("a"))
				a := l.Host("a")
				v1 := deployAll(t, l, "1.0")
				slow := `{"fleet": {"test": {"activationDelay": 6, "postActivation": "kill -CONT $(cat /run/sshd.pid) 2>/dev/null || true"}}}`
				file := rolloutDir(t, l, "2.0", map[string]string{"a": slow}, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    for h in ctx.hosts:
        push(h, closures[h.name])
        activate(h, closures[h.name], goal = "`+tt.goal+`"`+tt.confirm+`)
`)
				state := t.TempDir()
				started := newFile(t, filepath.Join(a.Root, "run/fleet/*-a/started"))
				p, gentle, wait := startFleet(t, append(runArgs(l, file), "--state-dir", state)...)
				started()
				// The switch runs (activationDelay 6 s): interrupt, and
				// once fleet took the first, again.
				p.Signal(tt.signals[0])
				<-gentle
				p.Signal(tt.signals[1])
				code, out, errs := wait()
				if code != 130 {
					t.Fatalf("exit %d, want 130", code)
				}
				v2 := closures(events(t, out))
				got := stateOf(t, a)
				want := hostState{Current: v2["a"], Profile: v2["a"], Boot: v2["a"]}
				if tt.goal == "boot" {
					want.Current = v1["a"]
				}
				if got != want {
					t.Errorf("host a\n got %+v\nwant %+v", got, want)
				}
				gcSafe(t, a)
				viaUnit(t, a, unit)
				if !strings.Contains(out, "waiting for the activation on a to end") {
					t.Errorf("fleet did not say it waits for the activation:\n%s\n%s", out, errs)
				}
				if h := history(t, state, "a"); !strings.Contains(h, "switched") {
					t.Errorf("history:\n%s", h)
				}
			})
		}
	})
}

// TestUnitsFailed (case 2): switch-to-configuration switches and exits
// 4. The host runs the new system and keeps its profile; fleet says
// "switched, with failed units", the step succeeds, history says
// switched; a rerun changes nothing.
func TestUnitsFailed(t *testing.T) {
	bothPaths(t, func(t *testing.T, opts func(...string) lab.Options, unit bool) {
		l := startLab(t, opts("a"))
		a := l.Host("a")
		deployAll(t, l, "1.0")
		failing := `{"fleet": {"test": {"unitsFailed": True, "postActivation": "kill -CONT $(cat /run/sshd.pid) 2>/dev/null || true"}}}`
		file := rolloutDir(t, l, "2.0", map[string]string{"a": failing}, "")
		state := t.TempDir()
		r := fleet(t, append(runArgs(l, file), "--state-dir", state)...)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0 (switched, with a warning)\n%s", r.code, r.stderr)
		}
		v2 := closures(events(t, r.stdout))
		if got, want := stateOf(t, a), (hostState{v2["a"], v2["a"], v2["a"]}); got != want {
			t.Errorf("host a\n got %+v\nwant %+v", got, want)
		}
		gcSafe(t, a)
		viaUnit(t, a, unit)
		if !strings.Contains(r.stdout, "switched, with failed units (switch-to-configuration switch exited with status 4)") {
			t.Errorf("fleet did not say the units failed:\n%s", r.stdout)
		}
		if h := history(t, state, "a"); !strings.Contains(h, "switched") || !strings.Contains(h, "switched, with failed units") ||
			!strings.Contains(h, "(generation 2)") {
			t.Errorf("history:\n%s", h)
		}
		r = fleet(t, append(runArgs(l, file), "--state-dir", state)...)
		if got, want := stateOf(t, a), (hostState{v2["a"], v2["a"], v2["a"]}); r.code != 0 || got != want {
			t.Errorf("rerun: exit %d, host %+v", r.code, got)
		}
	})
}

// TestConcurrentRuns (case 3): a second fleet run against a host that is
// activating waits for the first, saying whose deploy it waits for, and
// the host ends consistent with the second; with --no-wait it fails at
// once and changes nothing. Two runs on one state directory: the second
// waits or, with --no-wait, fails at once.
func TestConcurrentRuns(t *testing.T) {
	bothPaths(t, func(t *testing.T, opts func(...string) lab.Options, unit bool) {
		l := startLab(t, opts("a"))
		a := l.Host("a")
		deployAll(t, l, "1.0")
		slow := `{"fleet": {"test": {"activationDelay": 4, "postActivation": "kill -CONT $(cat /run/sshd.pid) 2>/dev/null || true"}}}`
		fileA := rolloutDir(t, l, "2.0", map[string]string{"a": slow}, "")
		fileB := rolloutDir(t, l, "3.0", nil, "")

		// --no-wait against a busy host and a busy state directory.
		stateA := t.TempDir()
		started := newFile(t, filepath.Join(a.Root, "run/fleet/*-a/started"))
		_, _, waitA := startFleet(t, append(runArgs(l, fileA), "--state-dir", stateA)...)
		started()
		start := time.Now()
		r := fleet(t, append(runArgs(l, fileB), "--state-dir", t.TempDir(), "--no-wait")...)
		if r.code != 1 || !strings.Contains(r.stderr, "a: activate failed: a is locked by the deploy started at ") || !strings.Contains(r.stderr, "(--no-wait)") {
			t.Errorf("--no-wait against a busy host: exit %d\n%s", r.code, r.stderr)
		}
		r = fleet(t, append(runArgs(l, fileB), "--state-dir", stateA, "--no-wait")...)
		if r.code != 1 || !strings.Contains(r.stderr, "is in use by the deploy started at ") {
			t.Errorf("--no-wait on a busy state directory: exit %d\n%s", r.code, r.stderr)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("--no-wait took %v", d)
		}
		if code, _, _ := waitA(); code != 0 {
			t.Fatalf("run A: exit %d", code)
		}

		// Waiting: B starts while A activates and goes after it.
		stateB := t.TempDir()
		fileA = rolloutDir(t, l, "4.0", map[string]string{"a": slow}, "")
		started = newFile(t, filepath.Join(a.Root, "run/fleet/*-a/started"))
		_, _, waitA = startFleet(t, append(runArgs(l, fileA), "--state-dir", stateA)...)
		started()
		rb := fleet(t, runArgs(l, fileB, "--state-dir", stateB)...)
		codeA, outA, _ := waitA()
		if codeA != 0 || rb.code != 0 {
			t.Fatalf("exit A %d, B %d\n%s", codeA, rb.code, rb.stderr)
		}
		if !strings.Contains(rb.stdout, "waiting for the deploy started at ") {
			t.Errorf("B did not say whose deploy it waited for:\n%s", rb.stdout)
		}
		v4 := closures(events(t, outA))
		v3 := closures(events(t, rb.stdout))
		if got, want := stateOf(t, a), (hostState{v3["a"], v3["a"], v3["a"]}); got != want {
			t.Errorf("host a\n got %+v\nwant %+v (B's system, whole)", got, want)
		}
		gcSafe(t, a)
		viaUnit(t, a, unit)
		if h := history(t, stateB, "a"); !strings.Contains(h, "switched") || !strings.Contains(h, shortName(v4["a"])) || !strings.Contains(h, shortName(v3["a"])) {
			t.Errorf("B's history does not go from A's system to B's:\n%s", h)
		}
	})
}

// shortName is a store path as history shows it.
func shortName(p string) string {
	b := filepath.Base(p)
	if i := strings.IndexByte(b, '-'); i > 0 {
		return b[i+1:]
	}
	return b
}

// TestHonestRollback (case 4): rollback() after a --goal test deploy
// whose check failed returns to the system the host ran before, not one
// generation older; after a dead-man rollback the broken generation is
// gone, so a later rollback(h) does not switch back to it.
func TestHonestRollback(t *testing.T) {
	bothPaths(t, func(t *testing.T, opts func(...string) lab.Options, unit bool) {
		l := startLab(t, opts("a"))
		a := l.Host("a")
		deployAll(t, l, "1.0")
		v2 := deployAll(t, l, "2.0")

		file := rolloutDir(t, l, "3.0", nil, `
load("@fleet//rollout.star", "canary")

def deploy(ctx):
    closures = nix_build(ctx.hosts)
    for h in ctx.hosts:
        push(h, closures[h.name])
    canary(ctx.hosts, lambda h: activate(h, closures[h.name], goal = "test", confirm = False), first = 1,
           check = lambda h: check(h, cmd = ["false"], retries = 0),
           on_failure = "rollback")
`)
		state := t.TempDir()
		r := fleet(t, append(runArgs(l, file), "--state-dir", state)...)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1", r.code)
		}
		if got, want := stateOf(t, a), (hostState{v2["a"], v2["a"], v2["a"]}); got != want {
			t.Errorf("after the test deploy's rollback\n got %+v\nwant %+v (what ran before)", got, want)
		}
		gcSafe(t, a)
		viaUnit(t, a, unit)
		if h := history(t, state, "a"); !strings.Contains(h, "rolled-back") || !strings.Contains(h, shortName(v2["a"])) {
			t.Errorf("history:\n%s", h)
		}

		// A dead-man rollback, then a rollback with no record.
		broken := `{"fleet": {"test": {"postActivation": "kill -STOP $(cat /run/sshd.pid)"}}}`
		file = rolloutDir(t, l, "5.0", map[string]string{"a": broken}, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    for h in ctx.hosts:
        push(h, closures[h.name])
        activate(h, closures[h.name], confirm = 3)
`)
		r = fleet(t, runArgs(l, file)...)
		if r.code != 1 || !strings.Contains(r.stderr, "runs "+v2["a"]+" again") {
			t.Fatalf("dead-man: exit %d\n%s", r.code, r.stderr)
		}
		v5 := closures(events(t, r.stdout))
		if got, want := stateOf(t, a), (hostState{v2["a"], v2["a"], v2["a"]}); got != want {
			t.Errorf("after the dead-man rollback\n got %+v\nwant %+v", got, want)
		}
		if gens := exec(t, a, "for g in /nix/var/nix/profiles/system-*-link; do readlink -f $g; done"); strings.Contains(gens, v5["a"]) {
			t.Errorf("the broken system still has a generation:\n%s", gens)
		}
		file = rolloutDir(t, l, "5.0", map[string]string{"a": broken}, `
def deploy(ctx):
    for h in ctx.hosts:
        rollback(h)
`)
		r = fleet(t, runArgs(l, file)...)
		if r.code != 0 {
			t.Fatalf("rollback: exit %d\n%s", r.code, r.stderr)
		}
		if cur := current(t, a); cur == v5["a"] || cur == v2["a"] {
			t.Errorf("a later rollback went to %s", cur)
		}
		if !strings.Contains(r.stdout, "no record of what a ran before this run") {
			t.Errorf("the fallback was not announced:\n%s", r.stdout)
		}
		gcSafe(t, a)
	})
}

// TestSlowConfirmation (case 5): the confirmation reaches the host and is
// recorded, but its answer does not reach fleet within the window. The
// host's record decides: fleet reports the system confirmed.
func TestSlowConfirmation(t *testing.T) {
	bothPaths(t, func(t *testing.T, opts func(...string) lab.Options, unit bool) {
		l := startLab(t, opts("a"))
		a := l.Host("a")
		deployAll(t, l, "1.0")
		file := rolloutDir(t, l, "2.0", nil, `
def deploy(ctx):
    closures = nix_build(ctx.hosts)
    for h in ctx.hosts:
        push(h, closures[h.name])
        activate(h, closures[h.name], confirm = 3)
`)
		written := newFile(t, filepath.Join(a.Root, "run/fleet/*-a/result"))
		done := make(chan result, 1)
		go func() { done <- fleet(t, runArgs(l, file)...) }()
		// Once the runner has written its result, the confirmation's
		// `cat DIR/sleep.pid` hangs on a FIFO: the confirmation is
		// recorded (mkdir decided, confirmed) but never answers; fleet's
		// window ends and it kills the command.
		res := written()
		pid := filepath.Join(filepath.Dir(res), "sleep.pid")
		os.Remove(pid)
		if err := syscall.Mkfifo(pid, 0o600); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.code != 0 {
			t.Fatalf("exit %d, want 0 (confirmed)\n%s", r.code, r.stderr)
		}
		v2 := closures(events(t, r.stdout))
		if got, want := stateOf(t, a), (hostState{v2["a"], v2["a"], v2["a"]}); got != want {
			t.Errorf("host a\n got %+v\nwant %+v", got, want)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(res), "confirmed")); err != nil {
			t.Errorf("the host has no confirmed record: %v", err)
		}
		if !strings.Contains(r.stdout, "was slow") || strings.Contains(r.stderr, "not confirmed") {
			t.Errorf("fleet did not report the recorded confirmation:\n%s\n%s", r.stdout, r.stderr)
		}
		viaUnit(t, a, unit)
		// Unblock the hung cat so that the lab can shut down cleanly.
		if f, err := os.OpenFile(pid, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

// TestNixOSLockHeld: another switch-to-configuration holds NixOS's own
// lock. fleet says so and changes nothing: no profile generation, no
// switch.
func TestNixOSLockHeld(t *testing.T) {
	bothPaths(t, func(t *testing.T, opts func(...string) lab.Options, unit bool) {
		l := startLab(t, opts("a"))
		a := l.Host("a")
		v1 := deployAll(t, l, "1.0")
		before := stateOf(t, a)
		exec(t, a, "mkdir -p /run/nixos && : >/run/nixos/switch-to-configuration.lock && setsid flock /run/nixos/switch-to-configuration.lock sleep 600 </dev/null >/dev/null 2>&1 & "+
			"while flock -n /run/nixos/switch-to-configuration.lock true; do :; done")
		r := fleet(t, runArgs(l, rolloutDir(t, l, "2.0", nil, ""))...)
		if r.code != 1 || !strings.Contains(r.stderr, "a: activate failed: another switch is running on a (switch-to-configuration's lock is held); nothing changed") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		if got := stateOf(t, a); got != before || got.Current != v1["a"] {
			t.Errorf("host a changed: %+v, was %+v", got, before)
		}
		if n := activations(t, a); n != 1 {
			t.Errorf("%d switches logged, want only the first deploy's", n)
		}
		gcSafe(t, a)
	})
}
