package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/nixserve"
	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// fakeHost is a NixOS machine in memory, behind the Host interface: the
// links the executor reads and writes (/run/current-system, the boot
// entry, the system profile and its generations), the state directories
// of detached activations (the runner's result, its dead-man window), the
// host lock and a boot id. It answers exactly the commands the executor
// sends and fails the test on any other. Its fault fields make the
// connection drop or new connections fail at given points, without any
// waiting.
type fakeHost struct {
	ok   string // what the last switch succeeded with (/run/fleet/ok)
	t    *testing.T
	user string

	mu      sync.Mutex
	current string         // /run/current-system, "" for none
	boot    string         // the boot entry, "" for none
	gens    map[int]string // the system profile's generations
	gen     int            // the profile's generation, 0 for none
	acts    map[string]*activation
	bootID  string
	store   map[string]bool // the store paths it has, besides its systems
	log     []string        // the commands run, "sudo " in front of privileged ones
	redials int
	stderr  string // what the command being run writes to stderr

	// Faults.
	failSwitch    map[string]int  // switch-to-configuration's exit status, by closure (nothing changes)
	unitsFailed   map[string]bool // switch-to-configuration switches, then exits 4
	noopSwitch    bool            // switch-to-configuration exits 0 but changes nothing
	nixosLocked   bool            // another switch-to-configuration holds NixOS's lock
	lockedBy      string          // another deploy holds the host lock (until the session waited)
	dropActivate  bool            // the connection drops while activating; the activation goes on
	forget        bool            // with dropActivate: the host loses the activation's state (a reboot wiped /run)
	downAfterDrop int             // with dropActivate: the commands after the drop that find the host unreachable
	down          int             // the next down commands (Run or Fresh) find the host unreachable
	freshDown     int             // the next freshDown Freshes cannot connect (the old connection still works)
	watchdogFirst bool            // the dead-man watchdog fires before fleet's confirmation arrives
	slowConfirm   bool            // the confirmation is recorded, but its answer never arrives
	stillRunning  bool            // after an interrupt, the detached switch does not end in time
	onSwitch      func()          // called as switch-to-configuration starts
	neverBack     bool            // a reboot does not come back
}

// activation is the state directory of one detached activation.
type activation struct {
	result     string // the runner's result line
	log        string
	previous   string // what the host ran before the run
	goal       string
	prev       string // the dead-man fallback
	prevGen    int
	newGen     int
	armed      bool // the dead-man window runs
	decided    bool
	confirmed  bool
	rolledback string // the watchdog's report, once it rolled back
}

// newFake is a machine running and booting system gens[gen], as user.
func newFake(t *testing.T, user string, gen int, gens map[int]string) *fakeHost {
	f := &fakeHost{t: t, user: user, gens: maps.Clone(gens), gen: gen, acts: map[string]*activation{}, bootID: "boot-1"}
	if f.gens == nil {
		f.gens = map[int]string{}
	}
	f.current = f.gens[gen]
	f.boot = f.gens[gen]
	return f
}

var errLost = fmt.Errorf("fake: %w", remote.ErrConnLost)

func (f *fakeHost) User() string { return f.user }

func (f *fakeHost) Run(ctx context.Context, cmd remote.Cmd) error {
	return f.do(ctx, cmd, false)
}

func (f *fakeHost) Fresh(ctx context.Context, cmd remote.Cmd) error {
	return f.do(ctx, cmd, true)
}

func (f *fakeHost) Redial() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redials++
}

func (f *fakeHost) Close() error { return nil }

func (f *fakeHost) do(ctx context.Context, cmd remote.Cmd, fresh bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := strings.Join(cmd.Argv, " ")
	if cmd.Sudo {
		line = "sudo " + line
	}
	switch {
	case f.down > 0:
		f.down--
		return errLost
	case fresh && f.freshDown > 0:
		f.freshDown--
		return errors.New("fake: connection refused")
	}
	f.log = append(f.log, line)
	if len(cmd.Argv) > 4 && cmd.Argv[2] == pushScript && slices.Equal(cmd.Argv[5:], nixserve.Command) {
		return f.push(cmd) // push_test.go
	}
	if cmd.Stdin != nil {
		io.Copy(io.Discard, cmd.Stdin)
	}
	f.stderr = ""
	out, code, err := f.exec(ctx, cmd.Argv)
	if cmd.Stderr != nil {
		io.WriteString(cmd.Stderr, f.stderr)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &remote.ExitError{Host: "fake", Command: line, Code: code, Stderr: f.stderr + out}
	}
	if cmd.Stdout != nil {
		io.WriteString(cmd.Stdout, out)
	}
	return nil
}

// exec runs argv on the fake machine: its stdout (its stderr on a
// non-zero exit) and exit status, or an error about reaching it.
func (f *fakeHost) exec(ctx context.Context, argv []string) (string, int, error) {
	switch argv[0] {
	case "readlink":
		return f.readlink(argv[1:])
	case "nix-env":
		if len(argv) < 4 || argv[1] != "--profile" || argv[2] != systemProfile {
			break
		}
		return f.nixEnv(argv[3:])
	case "cat":
		switch {
		case argv[1] == bootIDFile:
			return f.bootID + "\n", 0, nil
		}
	case "sh":
		return f.script(ctx, argv[2], argv[3:])
	}
	f.t.Errorf("fake host: unexpected command %q", argv)
	return "unexpected command", 127, nil
}

// unchanged is the session's test: the host already runs (or, for
// boot, boots) closure.
func (f *fakeHost) unchanged(closure, goal string) bool {
	prof := ""
	if f.gen != 0 {
		prof = f.gens[f.gen]
	}
	switch goal {
	case "switch":
		return f.current == closure && prof == closure && f.ok == closure
	case "test":
		return f.current == closure && f.ok == closure
	case "boot":
		return prof == closure
	}
	return false
}

func (f *fakeHost) readlink(args []string) (string, int, error) {
	switch strings.Join(args, " ") {
	case currentSystem:
		if f.current != "" {
			return f.current + "\n", 0, nil
		}
	case systemProfile:
		if f.gen != 0 {
			return fmt.Sprintf("system-%d-link\n", f.gen), 0, nil
		}
	case "-f " + systemProfile:
		if f.gen != 0 {
			return f.gens[f.gen] + "\n", 0, nil
		}
	default:
		f.t.Errorf("fake host: unexpected readlink %q", args)
	}
	return "", 1, nil
}

func (f *fakeHost) nixEnv(args []string) (string, int, error) {
	switch {
	case len(args) == 2 && args[0] == "--set":
		f.set(args[1])
		return "", 0, nil
	case len(args) == 2 && args[0] == "--switch-generation":
		n, _ := strconv.Atoi(args[1])
		if f.gens[n] == "" {
			return "error: generation " + args[1] + " does not exist", 1, nil
		}
		f.gen = n
		return "", 0, nil
	case len(args) == 2 && args[0] == "--delete-generations":
		n, _ := strconv.Atoi(args[1])
		if n == f.gen {
			return "error: cannot delete current generation", 1, nil
		}
		delete(f.gens, n)
		return "", 0, nil
	case len(args) == 1 && args[0] == "--rollback":
		older := 0
		for n := range f.gens {
			if n < f.gen && n > older {
				older = n
			}
		}
		if older == 0 {
			return fmt.Sprintf("error: no generation older than the current (%d) exists", f.gen), 1, nil
		}
		f.gen = older
		return "", 0, nil
	}
	f.t.Errorf("fake host: unexpected nix-env %q", args)
	return "", 1, nil
}

// set adds a generation of the system profile pointing at closure.
func (f *fakeHost) set(closure string) {
	f.gen = slices.Max(append(slices.Collect(maps.Keys(f.gens)), 0)) + 1
	f.gens[f.gen] = closure
}

func (f *fakeHost) script(ctx context.Context, script string, args []string) (string, int, error) {
	switch script {
	case ActivateScript:
		// fleet-activate dir closure goal confirm unit holder nowait bootloader drop reactivate
		dir, closure, goal, nowait, drop, reactivate := args[1], args[2], args[3], args[7], args[9], args[10]
		confirm, _ := strconv.Atoi(args[4])
		if f.lockedBy != "" {
			if nowait == "1" {
				f.stderr = "fleet-locked " + f.lockedBy + "\n"
				return "", exitLocked, nil
			}
			f.stderr = "fleet-waiting " + f.lockedBy + "\n"
			f.lockedBy = "" // that deploy ended meanwhile
		}
		if reactivate != "1" && drop == "" && f.unchanged(closure, goal) {
			g := ""
			if f.gen != 0 {
				g = strconv.Itoa(f.gen)
			}
			return fmt.Sprintf("fleet-result\t%s\t%s\t%s\t%s\t\t0\tunchanged\tnone\n", f.current, f.current, g, g), 0, nil
		}
		if f.onSwitch != nil {
			f.onSwitch()
		}
		a := f.runner(dir, closure, goal, confirm, drop)
		if f.watchdogFirst && a.armed {
			f.watchdog(a)
		}
		if f.dropActivate {
			f.dropActivate = false
			f.down = f.downAfterDrop
			if f.forget {
				delete(f.acts, dir)
			}
			return "", 0, errLost
		}
		if ctx.Err() != nil { // the session was killed; the runner went on
			return "", 0, fmt.Errorf("fake: %w", ctx.Err())
		}
		f.stderr += a.log
		return a.result, 0, nil
	case collectScript:
		a := f.acts[args[1]]
		if a == nil {
			f.stderr = "no activation started in " + args[1]
			return "", exitNoState, nil
		}
		if f.stillRunning {
			return "", 0, fmt.Errorf("fake: %w", context.DeadlineExceeded)
		}
		f.stderr = a.log
		return a.result, 0, nil
	case confirmScript:
		a := f.acts[args[1]]
		if a == nil || a.decided {
			return "", 1, nil
		}
		a.decided, a.confirmed = true, true
		if f.slowConfirm {
			return "", 0, fmt.Errorf("fake: %w", context.DeadlineExceeded)
		}
		return "", 0, nil
	case outcomeScript:
		a := f.acts[args[1]]
		if a == nil {
			return "", exitNoState, nil
		}
		if a.armed && !a.decided {
			f.watchdog(a) // the runner's window ends before it answers
		}
		switch {
		case a.confirmed:
			return "confirmed\n" + f.current + "\n", 0, nil
		case a.rolledback != "":
			return "rolledback\n" + f.current + "\n" + a.rolledback, 0, nil
		}
		return "undecided\n" + f.current + "\n", 0, nil
	case previousScript:
		if a := f.acts[args[1]]; a != nil {
			return a.previous + "\n", 0, nil
		}
		return "", 0, nil
	case rebootScript:
		if f.neverBack {
			f.down = 1 << 30
			return "", 0, nil
		}
		f.bootID = "boot-2"
		f.current = f.gens[f.gen]
		return "", 0, nil
	}
	f.t.Errorf("fake host: unexpected script %q", script)
	return "", 127, nil
}

// runner is the detached part of an activation, as runnerScript does it:
// the profile, the switch, and the decision on what IS afterwards.
func (f *fakeHost) runner(dir, closure, goal string, confirm int, drop string) *activation {
	a := f.acts[dir]
	if a == nil {
		a = &activation{previous: f.current}
		f.acts[dir] = a
	}
	*a = activation{previous: a.previous, goal: goal, prev: f.current, prevGen: f.gen}
	status, decision := 0, ""
	result := func() {
		a.result = fmt.Sprintf("fleet-result\t%s\t%s\t%s\t%s\t%s\t%d\t%s\tfake\n", a.prev, f.current,
			genStr(a.prevGen), genStr(f.gen), f.boot, status, decision)
	}
	if f.nixosLocked {
		status, decision = 11, "locked"
		a.log = "Could not acquire lock"
		result()
		return a
	}
	if (goal == "switch" || goal == "boot") && f.gens[f.gen] != closure {
		f.set(closure)
		a.newGen = f.gen
	}
	a.log, status = f.switchTo(closure, goal)
	runs := (goal == "switch" || goal == "test") && f.current == closure ||
		(goal == "switch" || goal == "boot") && f.boot == closure
	restore := func() {
		if a.newGen != 0 && a.prevGen != 0 {
			f.gen = a.prevGen
			delete(f.gens, a.newGen)
			decision += "-restored"
		}
	}
	switch {
	case goal == "dry-activate":
		decision = map[bool]string{true: "ok", false: "failed"}[status == 0]
	case runs && status == 0:
		decision = "ok"
	case runs && (status == 2 || status == 4):
		decision = "units-failed"
	case runs:
		decision = "switched-failed"
	case status == 11:
		decision = "locked"
		restore()
	default:
		decision = "failed"
		restore()
	}
	f.ok = ""
	if decision == "ok" && runs && goal != "boot" {
		f.ok = closure // /run/fleet/ok
	}
	if n, _ := strconv.Atoi(drop); decision == "ok" && n != 0 && n != f.gen {
		delete(f.gens, n)
	}
	a.armed = decision == "ok" && confirm > 0 && a.prev != "" && a.prev != closure && f.current == closure
	result()
	return a
}

func genStr(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// switchTo is closure's switch-to-configuration goal: its output and
// exit status.
func (f *fakeHost) switchTo(closure, goal string) (string, int) {
	if code := f.failSwitch[closure]; code != 0 {
		return "switching to " + closure + ": failed", code
	}
	if f.noopSwitch {
		return "switching to " + closure, 0
	}
	if goal == "switch" || goal == "boot" {
		f.boot = closure
	}
	if goal == "switch" || goal == "test" {
		f.current = closure
	}
	if f.unitsFailed[closure] && goal != "boot" {
		return "switching to " + closure + "\nFailed to start fleet-test-failing.service", 4
	}
	return "switching to " + closure, 0
}

// watchdog is the dead-man switch of a, firing: it goes back to a.prev
// and deletes the failed generation once the host switched away from it.
func (f *fakeHost) watchdog(a *activation) {
	a.decided = true
	if a.goal == "switch" {
		if a.prevGen != 0 && f.gens[a.prevGen] == a.prev {
			f.gen = a.prevGen
		} else {
			f.set(a.prev)
		}
	}
	log, code := f.switchTo(a.prev, a.goal)
	if code == 0 && a.newGen != 0 {
		delete(f.gens, a.newGen)
	}
	a.rolledback = fmt.Sprintf("not confirmed: rolling back to %s\n%s\nexit %d\n", a.prev, log, code)
}

// state is what the test checks after an operation.
type state struct {
	Current string
	Gen     int
	Gens    map[int]string
}

func (f *fakeHost) state() state {
	f.mu.Lock()
	defer f.mu.Unlock()
	return state{f.current, f.gen, maps.Clone(f.gens)}
}

// fakeClock moves on as soon as it is asked to wait.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

// fakeExecutor is an Executor whose every host is f.
func fakeExecutor(f *fakeHost) (*Executor, *fakeClock) {
	e := New(Options{})
	c := &fakeClock{now: time.Unix(0, 0)}
	e.clock = c
	e.newHost = func(*runtime.Host) (Host, error) { return f, nil }
	return e, c
}
