package mininix_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// switchPrefix is the systemd-run argv nixos-rebuild-ng runs
// switch-to-configuration with (SWITCH_TO_CONFIGURATION_CMD_PREFIX in
// nixos_rebuild/nix.py, see docs/activation.md), plus -E LAB_ROOT for the
// fixture.
var switchPrefix = []string{
	"-E", "LOCALE_ARCHIVE", "-E", "NIXOS_INSTALL_BOOTLOADER", "-E", "NIXOS_NO_CHECK",
	"--collect", "--no-ask-password", "--pipe", "--quiet", "--service-type=exec",
	"--unit=nixos-rebuild-switch-to-configuration", "-E", "LAB_ROOT",
}

// standin is a lab host's view of testdata/lab's systemd-run and systemctl:
// their state under root (as LAB_ROOT).
type standin struct {
	dir, root string
}

func newStandin(t *testing.T) standin {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "lab"))
	if err != nil {
		t.Fatal(err)
	}
	return standin{dir: dir, root: t.TempDir()}
}

func (s standin) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.dir, prog), args...)
	cmd.Env = []string{"PATH=" + sshdPath, "LAB_ROOT=" + s.root, "HOME=/root", "FLEET_PASSED=from caller"}
	cmd.Dir = s.root
	return cmd
}

type result struct {
	stdout, stderr string
	exit           int
}

func (s standin) run(t *testing.T, prog string, args ...string) result {
	t.Helper()
	var r result
	r.stdout, r.stderr, r.exit = runCmd(t, s.command(prog, args...))
	return r
}

// show returns `systemctl show -p ActiveState,Result,ExecMainStatus,LoadState unit`.
func (s standin) show(t *testing.T, unit string) string {
	t.Helper()
	r := s.run(t, "systemctl", "show", "-p", "ActiveState,Result,ExecMainStatus,LoadState", unit)
	if r.exit != 0 {
		t.Fatalf("systemctl show %s: exit %d: %s", unit, r.exit, r.stderr)
	}
	return strings.TrimSpace(strings.ReplaceAll(r.stdout, "\n", " "))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alreadyLoaded(unit string) string {
	return "Failed to start transient service unit: Unit " + unit + " was already loaded or has a fragment file.\n"
}

// TestSystemdRunExit: with --pipe the command's output comes back as it is
// written and systemd-run exits as systemd's does (the command's status,
// 255 for a signal); afterwards the unit is gone (success, or --collect)
// or stays "failed" until reset-failed.
func TestSystemdRunExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   string
		collect  bool
		wantExit int
		wantShow string // systemctl show afterwards
	}{
		{"success", "exit 0", false, 0, "Result=success ExecMainStatus=0 LoadState=not-found ActiveState=inactive"},
		{"success collect", "exit 0", true, 0, "Result=success ExecMainStatus=0 LoadState=not-found ActiveState=inactive"},
		{"units failed", "exit 4", false, 4, "Result=exit-code ExecMainStatus=4 LoadState=loaded ActiveState=failed"},
		{"units failed collect", "exit 4", true, 4, "Result=success ExecMainStatus=0 LoadState=not-found ActiveState=inactive"},
		{"signal", "kill -TERM $$", false, 255, "Result=signal ExecMainStatus=15 LoadState=loaded ActiveState=failed"},
		{"signal collect", "kill -TERM $$", true, 255, "Result=success ExecMainStatus=0 LoadState=not-found ActiveState=inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStandin(t)
			args := []string{"--pipe", "--quiet", "--service-type=exec", "--unit=u"}
			if tt.collect {
				args = append(args, "--collect")
			}
			r := s.run(t, "systemd-run", append(args, "sh", "-c", "echo out; echo err >&2; "+tt.script)...)
			if r.exit != tt.wantExit || r.stdout != "out\n" || r.stderr != "err\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", r.exit, r.stdout, r.stderr, tt.wantExit, "out\n", "err\n")
			}
			if got := s.show(t, "u.service"); got != tt.wantShow {
				t.Errorf("afterwards: %s\nwant        %s", got, tt.wantShow)
			}
			// A failed unit keeps its name until reset-failed.
			again := s.run(t, "systemd-run", "--pipe", "--quiet", "--unit=u", "true")
			if failed := strings.Contains(tt.wantShow, "ActiveState=failed"); failed {
				if again.exit != 1 || again.stderr != alreadyLoaded("u.service") {
					t.Errorf("again: exit %d, %q; want 1, %q", again.exit, again.stderr, alreadyLoaded("u.service"))
				}
				if r := s.run(t, "systemctl", "reset-failed", "u"); r.exit != 0 {
					t.Fatalf("reset-failed: %d %s", r.exit, r.stderr)
				}
				again = s.run(t, "systemd-run", "--pipe", "--quiet", "--unit=u", "true")
			}
			if again.exit != 0 {
				t.Errorf("the name is not free again: exit %d, %s", again.exit, again.stderr)
			}
		})
	}
}

// TestSystemdRunService: the command runs as a service would: a clean
// environment (systemd's PATH, INVOCATION_ID, -E NAME=VALUE, -E NAME
// passing the caller's value or "" if unset), in / unless --same-dir.
func TestSystemdRunService(t *testing.T) {
	t.Parallel()
	s := newStandin(t)
	r := s.run(t, "systemd-run", "--pipe", "--quiet", "--collect",
		"-E", "FLEET_PASSED", "-EFLEET_SET=x y", "--setenv=FLEET_UNSET", "--setenv", "NIXOS_INSTALL_BOOTLOADER=0",
		"/bin/sh", "-c", `pwd; env | grep -v '^PWD=' | sort`)
	if r.exit != 0 {
		t.Fatalf("exit %d: %s", r.exit, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := []string{"/", "FLEET_PASSED=from caller", "FLEET_SET=x y", "FLEET_UNSET=", "INVOCATION_ID=", "NIXOS_INSTALL_BOOTLOADER=0",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if len(lines) != len(want) {
		t.Fatalf("got\n%s\nwant %d lines like %q", r.stdout, len(want), want)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want %q", i, lines[i], w)
		}
	}
	if id := strings.TrimPrefix(lines[4], "INVOCATION_ID="); len(id) != 32 {
		t.Errorf("INVOCATION_ID %q is not 32 hex digits", id)
	}

	if r := s.run(t, "systemd-run", "--pipe", "--quiet", "--same-dir", "pwd"); r.stdout != s.root+"\n" {
		t.Errorf("--same-dir: pwd %q, want %q", r.stdout, s.root)
	}
	// Without --quiet it says which unit, as systemd-run does.
	if r := s.run(t, "systemd-run", "--pipe", "--unit", "named", "true"); !strings.HasPrefix(r.stderr, "Running as unit: named.service; invocation ID: ") {
		t.Errorf("without --quiet: stderr %q", r.stderr)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--pipe", "no-such-command"}, "Failed to find executable no-such-command: No such file or directory\n"},
		{[]string{"--pipe"}, "Command line to execute required.\n"},
		{[]string{"--scope", "true"}, "systemd-run (lab stand-in): unsupported option '--scope'\n"},
	} {
		if r := s.run(t, "systemd-run", tt.args...); r.exit != 1 || r.stderr != tt.want {
			t.Errorf("systemd-run %q: exit %d, %q; want 1, %q", tt.args, r.exit, r.stderr, tt.want)
		}
	}
}

// TestSystemdRunDetached: a unit of a name that runs makes a second
// systemd-run of it fail as systemd's does (also when they race), and
// killing the caller's whole process group and closing its pipes, as a
// dropped SSH connection does, leaves the command running (SIGPIPE
// ignored, as in a systemd service), its outcome recorded for systemctl.
func TestSystemdRunDetached(t *testing.T) {
	t.Parallel()
	s := newStandin(t)
	marker := filepath.Join(s.root, "marker")
	caller := s.command("systemd-run", "--pipe", "--quiet", "--unit=sw", "-E", "LAB_ROOT",
		"/bin/sh", "-c", `echo started; read line; sleep 1; echo late; r=$?; echo late >&2; echo "after=$r $?" >"$LAB_ROOT/marker"; exit 4`)
	caller.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := caller.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := caller.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := caller.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("read %q, %v", line, err)
	}

	if r := s.run(t, "systemctl", "is-active", "--", "sw"); r.exit != 0 || r.stdout != "active\n" {
		t.Errorf("is-active while it runs: exit %d, %q", r.exit, r.stdout)
	}
	if got, want := s.show(t, "sw.service"), "Result=success ExecMainStatus=0 LoadState=loaded ActiveState=active"; got != want {
		t.Errorf("while it runs: %s, want %s", got, want)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.run(t, "systemd-run", "--pipe", "--quiet", "--collect", "--unit=sw", "true")
			mu.Lock()
			defer mu.Unlock()
			if r.exit == 1 && r.stderr == alreadyLoaded("sw.service") {
				refused++
			} else {
				t.Errorf("second systemd-run: exit %d, %q", r.exit, r.stderr)
			}
		}()
	}
	wg.Wait()
	if refused != 4 {
		t.Errorf("%d of 4 second starts refused", refused)
	}

	// The connection drops: the session's processes die, the pipes close.
	if err := syscall.Kill(-caller.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stdout.Close()
	stderr.Close()
	stdin.Write([]byte("go on\n"))
	stdin.Close()
	caller.Wait()

	waitFor(t, "the command to finish", func() bool {
		return !strings.Contains(s.show(t, "sw.service"), "ActiveState=active")
	})
	if got := readFile(t, marker); got != "after=1 1\n" {
		t.Errorf("marker %q: want the write to the closed pipe to fail (EPIPE), not kill the command", got)
	}
	if got, want := s.show(t, "sw.service"), "Result=exit-code ExecMainStatus=4 LoadState=loaded ActiveState=failed"; got != want {
		t.Errorf("after the drop: %s, want %s", got, want)
	}
	journal := readFile(t, filepath.Join(s.root, "run/systemd-standin/journal/sw.service.log"))
	if want := "sw.service: Main process exited, code=exited, status=4/NOPERMISSION\nsw.service: Failed with result 'exit-code'.\n"; journal != want {
		t.Errorf("journal %q, want %q", journal, want)
	}
}

// TestSystemdRunNoWait: without --pipe or --wait systemd-run returns once
// the command runs; its output goes to the journal.
func TestSystemdRunNoWait(t *testing.T) {
	t.Parallel()
	s := newStandin(t)
	start := time.Now()
	r := s.run(t, "systemd-run", "--quiet", "--unit=bg", "-E", "LAB_ROOT", "/bin/sh", "-c", `echo to-journal; sleep 1; touch "$LAB_ROOT/done"`)
	if r.exit != 0 || r.stdout != "" || r.stderr != "" || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("exit %d after %v: %q %q", r.exit, time.Since(start), r.stdout, r.stderr)
	}
	if r := s.run(t, "systemctl", "is-active", "bg.service"); r.stdout != "active\n" {
		t.Errorf("is-active: %q", r.stdout)
	}
	waitFor(t, "done", func() bool { _, err := os.Stat(filepath.Join(s.root, "done")); return err == nil })
	waitFor(t, "unloaded", func() bool { return !strings.Contains(s.show(t, "bg"), "LoadState=loaded") })
	if r := s.run(t, "systemctl", "is-active", "bg"); r.exit != 3 {
		t.Errorf("is-active of an unloaded unit: exit %d, want 3", r.exit)
	}
	journal := readFile(t, filepath.Join(s.root, "run/systemd-standin/journal/bg.service.log"))
	if want := "to-journal\nbg.service: Main process exited, code=exited, status=0/SUCCESS\n"; journal != want {
		t.Errorf("journal %q, want %q", journal, want)
	}
	if r := s.run(t, "systemctl", "show", "--value", "-p", "LoadState", "bg"); r.stdout != "not-found\n" {
		t.Errorf("show --value: %q", r.stdout)
	}
}

// TestSystemdRunSwitch runs the fixture's switch-to-configuration the way
// nixos-rebuild-ng does, through the stand-in: exit 4 and NixOS's
// messages come back through --pipe; a second switch while the first
// runs is refused by systemd (same unit) or by the switch's own lock (a
// unit of another name, or no systemd-run).
func TestSystemdRunSwitch(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	system := func(modules string) string {
		return mustBuild(t, hostExpr(fix, "x86_64-linux", `{ name = "lab"; }`, modules))
	}
	unitsFailed := system(`[ { fleet.test.unitsFailed = true; } ]`)
	slow := system(`[ { fleet.test.activationDelay = 2; } ]`)
	s := newStandin(t)
	h := labHostAt(t, s.root)
	switchArgs := func(toplevel string, prefix ...string) []string {
		return append(append(prefix, switchPrefix...), toplevel+"/bin/switch-to-configuration", "switch")
	}

	r := s.run(t, "systemd-run", switchArgs(unitsFailed)...)
	if r.exit != 4 || !strings.Contains(r.stderr, "warning: the following units failed: fleet-test-failing.service\n") ||
		!strings.Contains(r.stdout, "activating "+unitsFailed+" (switch)") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", r.exit, r.stdout, r.stderr)
	}
	if target(t, h.current) != unitsFailed || target(t, h.boot) != unitsFailed {
		t.Errorf("exit 4 but the system was not switched")
	}

	first := s.command("systemd-run", switchArgs(slow)...)
	out, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.HasPrefix(line, "waiting 2s") {
		t.Fatalf("first switch: %q, %v", line, err)
	}
	if r := s.run(t, "systemd-run", switchArgs(unitsFailed)...); r.exit != 1 || r.stderr != alreadyLoaded("nixos-rebuild-switch-to-configuration.service") {
		t.Errorf("same unit: exit %d, %q", r.exit, r.stderr)
	}
	other := switchArgs(unitsFailed)
	for i, a := range other {
		if strings.HasPrefix(a, "--unit=") {
			other[i] = "--unit=other-switch"
		}
	}
	if r := s.run(t, "systemd-run", other...); r.exit != 11 || r.stderr != "Could not acquire lock\n" {
		t.Errorf("other unit: exit %d, %q; want the switch's lock to refuse (11)", r.exit, r.stderr)
	}
	if r := h.switchTo(t, unitsFailed, "switch"); r.exit != 11 {
		t.Errorf("without systemd-run: exit %d, want 11", r.exit)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first switch: %v", err)
	}
	if got := target(t, h.current); got != slow {
		t.Errorf("current-system -> %s, want %s", got, slow)
	}
}

// TestSystemdRunSwitchDropped: the connection drops while the switch runs
// as a transient unit. With --pipe (nixos-rebuild-ng's argv) the switch
// dies at its next message, exit status 101, as on NixOS (nixpkgs
// #462179); with its output in the journal (--wait without --pipe) it
// completes.
func TestSystemdRunSwitchDropped(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	slow := mustBuild(t, hostExpr(fix, "x86_64-linux", `{ name = "lab"; }`, `[ { fleet.test.activationDelay = 1; } ]`))
	for _, tt := range []struct {
		name     string
		args     []string
		wantShow string
		want     string // current-system afterwards
	}{
		{"pipe", switchPrefix, "Result=exit-code ExecMainStatus=101 LoadState=loaded ActiveState=failed", oldSystem},
		{"journal", []string{"--wait", "--quiet", "--unit=sw", "-E", "LAB_ROOT"}, "Result=success ExecMainStatus=0 LoadState=not-found ActiveState=inactive", slow},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStandin(t)
			h := labHostAt(t, s.root)
			args := append([]string{}, tt.args...)
			for i, a := range args { // no --collect: keep the outcome to look at
				if a == "--collect" {
					args = append(args[:i], args[i+1:]...)
					break
				}
			}
			unit := "sw"
			for _, a := range args {
				if strings.HasPrefix(a, "--unit=") {
					unit = strings.TrimPrefix(a, "--unit=")
				}
			}
			caller := s.command("systemd-run", append(args, slow+"/bin/switch-to-configuration", "switch")...)
			caller.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			caller.Stdout, caller.Stderr = pw, pw
			if err := caller.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			waitFor(t, "the switch to run", func() bool { return strings.Contains(s.show(t, unit), "ActiveState=active") })
			syscall.Kill(-caller.Process.Pid, syscall.SIGKILL)
			pr.Close()
			caller.Wait()
			waitFor(t, "the switch to end", func() bool { return !strings.Contains(s.show(t, unit), "ActiveState=active") })
			if got := s.show(t, unit); got != tt.wantShow {
				t.Errorf("%s\nwant %s", got, tt.wantShow)
			}
			if got := target(t, h.current); got != tt.want {
				t.Errorf("current-system -> %s, want %s", got, tt.want)
			}
		})
	}
}
