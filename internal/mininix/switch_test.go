package mininix_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oldSystem is what a host runs before a test switches it.
const oldSystem = "/nix/store/00000000000000000000000000000000-nixos-system-lab-old"

// labHost is a LAB_ROOT temp dir on which oldSystem is active (current
// system and boot entry), as a host that ran a switch before.
type labHost struct {
	root, current, boot, log, lock string
}

func newLabHost(t *testing.T) labHost {
	t.Helper()
	return labHostAt(t, t.TempDir())
}

// labHostAt is newLabHost in root.
func labHostAt(t *testing.T, root string) labHost {
	t.Helper()
	h := labHost{
		root:    root,
		current: filepath.Join(root, "run/current-system"),
		boot:    filepath.Join(root, "nix/var/lab/boot/default"),
		log:     filepath.Join(root, "nix/var/log/switch-to-configuration.log"),
		lock:    filepath.Join(root, "run/nixos/switch-to-configuration.lock"),
	}
	for _, link := range []string{h.current, h.boot} {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(oldSystem, link); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// switchRun is one run of bin/switch-to-configuration.
type switchRun struct {
	stdout, stderr string // stdout with the LAB_ROOT replaced by "$LAB_ROOT"
	exit           int
	elapsed        time.Duration
}

// command is toplevel's bin/switch-to-configuration with args, run on h
// with sshd's default PATH.
func (h labHost) command(toplevel string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(toplevel, "bin/switch-to-configuration"), args...)
	cmd.Env = []string{"PATH=" + sshdPath, "LAB_ROOT=" + h.root, "HOME=" + h.root}
	return cmd
}

func (h labHost) switchTo(t *testing.T, toplevel string, args ...string) switchRun {
	t.Helper()
	start := time.Now()
	stdout, stderr, exit := runCmd(t, h.command(toplevel, args...))
	return switchRun{
		stdout:  strings.ReplaceAll(stdout, h.root, "$LAB_ROOT"),
		stderr:  stderr,
		exit:    exit,
		elapsed: time.Since(start),
	}
}

// runCmd runs cmd and returns its output and exit status.
func runCmd(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, exit int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		exit = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), exit
}

// target returns where link points.
func target(t *testing.T, link string) string {
	t.Helper()
	p, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSwitchToConfiguration runs bin/switch-to-configuration against a
// LAB_ROOT temp dir, with sshd's default PATH.
func TestSwitchToConfiguration(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	system := func(modules string) string {
		return mustBuild(t, hostExpr(fix, "x86_64-linux", `{ name = "lab"; }`, modules))
	}
	const post = `fleet.test.postActivation = "echo \"post $goal\" >>\"$root/post-activation\"";`
	good := system(`[ { ` + post + ` } ]`)
	failing := system(`[ { fleet.test.failActivation = true; } ]`)
	delayed := system(`[ { fleet.test.activationDelay = 1; } ]`)
	unitsFailed := system(`[ { fleet.test.unitsFailed = true; ` + post + ` } ]`)
	if good == failing || good == delayed || good == unitsFailed {
		t.Fatal("fleet.test options do not change the toplevel")
	}
	const failedUnits = "warning: the following units failed: fleet-test-failing.service"

	tests := []struct {
		name        string
		toplevel    string
		args        []string
		wantExit    int
		wantCurrent bool   // run/current-system -> toplevel
		wantBoot    bool   // nix/var/lab/boot/default -> toplevel
		wantLog     string // result in the log line; "" = no line
		wantPost    bool   // postActivation ran
		wantOut     string // substring of stdout
		wantErr     string // substring of stderr
		notErr      string // must not be in stderr
		minDuration time.Duration
	}{
		{name: "switch", toplevel: good, args: []string{"switch"}, wantCurrent: true, wantBoot: true, wantLog: "ok", wantPost: true},
		{name: "boot", toplevel: good, args: []string{"boot"}, wantBoot: true, wantLog: "ok", wantPost: true},
		{name: "test", toplevel: good, args: []string{"test"}, wantCurrent: true, wantLog: "ok", wantPost: true},
		{name: "dry-activate", toplevel: good, args: []string{"dry-activate"}, wantLog: "ok",
			wantOut: "would change $LAB_ROOT/run/current-system: " + oldSystem + " -> " + good},
		{name: "failActivation", toplevel: failing, args: []string{"switch"}, wantExit: 1, wantLog: "failed",
			wantErr: "activation failed on purpose (fleet.test.failActivation)"},
		{name: "failActivation boot", toplevel: failing, args: []string{"boot"}, wantExit: 1, wantLog: "failed",
			wantErr: "activation failed on purpose (fleet.test.failActivation)"},
		{name: "activationDelay", toplevel: delayed, args: []string{"switch"}, wantCurrent: true, wantBoot: true, wantLog: "ok",
			minDuration: time.Second},
		// Exit 4: the switch is done (both links new, postActivation ran),
		// but units failed, as NixOS reports it.
		{name: "unitsFailed switch", toplevel: unitsFailed, args: []string{"switch"}, wantExit: 4,
			wantCurrent: true, wantBoot: true, wantLog: "units-failed", wantPost: true,
			wantErr: "Failed to start fleet-test-failing.service\n" + failedUnits + "\n",
			wantOut: "× fleet-test-failing.service"},
		{name: "unitsFailed test", toplevel: unitsFailed, args: []string{"test"}, wantExit: 4,
			wantCurrent: true, wantLog: "units-failed", wantPost: true, wantErr: failedUnits},
		// boot starts no units, in NixOS as here: it cannot fail that way.
		{name: "unitsFailed boot", toplevel: unitsFailed, args: []string{"boot"},
			wantBoot: true, wantLog: "ok", wantPost: true, notErr: "failed"},
		{name: "unitsFailed dry-activate", toplevel: unitsFailed, args: []string{"dry-activate"}, wantLog: "ok", notErr: "failed"},
		{name: "bad goal", toplevel: good, args: []string{"reboot"}, wantExit: 1, wantErr: "usage: switch-to-configuration"},
		{name: "no goal", toplevel: good, wantExit: 1, wantErr: "usage: switch-to-configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newLabHost(t)
			r := h.switchTo(t, tt.toplevel, tt.args...)
			if r.exit != tt.wantExit {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.exit, tt.wantExit, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.wantOut) {
				t.Errorf("stdout does not contain %q:\n%s", tt.wantOut, r.stdout)
			}
			if !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantErr, r.stderr)
			}
			if tt.notErr != "" && strings.Contains(r.stderr, tt.notErr) {
				t.Errorf("stderr contains %q:\n%s", tt.notErr, r.stderr)
			}
			if r.elapsed < tt.minDuration {
				t.Errorf("took %v, want at least %v", r.elapsed, tt.minDuration)
			}

			for _, l := range []struct {
				path string
				want bool
			}{{h.current, tt.wantCurrent}, {h.boot, tt.wantBoot}} {
				want := oldSystem
				if l.want {
					want = tt.toplevel
				}
				if got := target(t, l.path); got != want {
					t.Errorf("%s -> %s, want -> %s", l.path, got, want)
				}
			}
			// No temp links left behind: next to each link only the link
			// itself (and, in run/, NixOS's lock directory).
			for _, link := range []string{h.current, h.boot} {
				entries, err := os.ReadDir(filepath.Dir(link))
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.Name() != filepath.Base(link) && !(link == h.current && e.Name() == "nixos") {
						t.Errorf("%s: unexpected entry %s", filepath.Dir(link), e.Name())
					}
				}
			}

			logText, err := os.ReadFile(h.log)
			if tt.wantLog == "" {
				if err == nil {
					t.Errorf("log written: %q", logText)
				}
			} else {
				re := regexp.MustCompile(`^[0-9]{10,} ` + regexp.QuoteMeta(tt.args[0]+" "+tt.toplevel+" "+tt.wantLog) + "\n$")
				if !re.Match(logText) {
					t.Errorf("log is %q, want one line matching %s", logText, re)
				}
			}

			post, err := os.ReadFile(filepath.Join(h.root, "post-activation"))
			if tt.wantPost {
				if want := "post " + tt.args[0] + "\n"; string(post) != want {
					t.Errorf("postActivation wrote %q, want %q", post, want)
				}
			} else if err == nil {
				t.Errorf("postActivation ran: %q", post)
			}
		})
	}
}

// TestSwitchLock: like NixOS's, the switch takes
// /run/nixos/switch-to-configuration.lock without waiting, so a second
// switch (or dry-activate) while one runs fails at once with "Could not
// acquire lock" and exit status 11, changing and logging nothing; the
// first one finishes unharmed and the lock is free again after it.
func TestSwitchLock(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	system := func(modules string) string {
		return mustBuild(t, hostExpr(fix, "x86_64-linux", `{ name = "lab"; }`, modules))
	}
	slow := system(`[ { fleet.test.activationDelay = 3; } ]`)
	// postActivation leaves a process behind: it must not hold the lock.
	other := system(`[ { fleet.test.postActivation = "sleep 10 >/dev/null 2>&1 &"; } ]`)

	h := newLabHost(t)
	first := h.command(slow, "switch")
	var firstErr bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	first.Stdout, first.Stderr = pw, &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// The first switch prints "waiting 3s" once it holds the lock.
	buf := make([]byte, 256)
	n, err := pr.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "waiting 3s") {
		t.Fatalf("first switch: read %q, %v", buf[:n], err)
	}
	go io.Copy(io.Discard, pr)

	for _, goal := range []string{"switch", "dry-activate"} {
		start := time.Now()
		r := h.switchTo(t, other, goal)
		if r.exit != 11 || r.stderr != "Could not acquire lock\n" {
			t.Errorf("%s while another switch runs: exit %d, stderr %q; want 11, %q", goal, r.exit, r.stderr, "Could not acquire lock\n")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s waited %v for the lock; NixOS's does not wait", goal, d)
		}
	}
	if got := target(t, h.current); got != oldSystem {
		t.Errorf("current-system -> %s while the first switch waits, want the old system", got)
	}
	if _, err := os.Stat(h.log); err == nil {
		t.Errorf("refused switches wrote the log: %q", readFile(t, h.log))
	}

	if err := first.Wait(); err != nil {
		t.Fatalf("first switch: %v\n%s", err, firstErr.String())
	}
	if got := target(t, h.current); got != slow {
		t.Errorf("current-system -> %s after the first switch, want %s", got, slow)
	}

	// The lock is free again, also with postActivation's process left running.
	for i := 0; i < 2; i++ {
		if r := h.switchTo(t, other, "switch"); r.exit != 0 {
			t.Fatalf("switch %d after the first: exit %d\n%s", i+1, r.exit, r.stderr)
		}
	}
	if got := target(t, h.current); got != other {
		t.Errorf("current-system -> %s, want %s", got, other)
	}
	if st, err := os.Stat(filepath.Dir(h.lock)); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("lock directory: %v, %v; want mode 0755", st, err)
	}
	f, err := os.OpenFile(h.lock, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Errorf("lock still held after every switch ended: %v", err)
	}
}

// TestSwitchClosedOutput: as switch-to-configuration-ng, a switch whose
// output pipe closes (a dropped --pipe connection) dies at its next
// message with exit status 101, whatever it has done so far; here, during
// activationDelay, before any link changed.
func TestSwitchClosedOutput(t *testing.T) {
	t.Parallel()
	fix := fixtureDir(t)
	slow := mustBuild(t, hostExpr(fix, "x86_64-linux", `{ name = "lab"; }`, `[ { fleet.test.activationDelay = 1; } ]`))
	h := newLabHost(t)
	cmd := h.command(slow, "switch")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	buf := make([]byte, 256)
	if n, err := pr.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "waiting 1s") {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	pr.Close()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 101 {
		t.Errorf("switch with its output closed: %v, want exit status 101", err)
	}
	if target(t, h.current) != oldSystem || target(t, h.boot) != oldSystem {
		t.Errorf("links changed")
	}
	if re := regexp.MustCompile(`^[0-9]+ switch ` + regexp.QuoteMeta(slow) + " panicked\n$"); !re.MatchString(readFile(t, h.log)) {
		t.Errorf("log %q, want a panicked line", readFile(t, h.log))
	}
}
