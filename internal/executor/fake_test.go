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
// links the executor reads and writes (/run/current-system, the system
// profile and its generations), the state directories of detached
// activations with their dead-man watchdogs, and a boot id. It answers
// exactly the commands the executor sends and fails the test on any
// other. Its fault fields make the connection drop or new connections
// fail at given points, without any waiting.
type fakeHost struct {
	t    *testing.T
	user string

	mu      sync.Mutex
	current string         // /run/current-system, "" for none
	gens    map[int]string // the system profile's generations
	gen     int            // the profile's generation, 0 for none
	acts    map[string]*activation
	bootID  string
	store   map[string]bool // the store paths it has, besides its systems
	log     []string        // the commands run, "sudo " in front of privileged ones
	redials int

	// Faults.
	failSwitch    map[string]int // switch-to-configuration's exit status, by closure
	noopSwitch    bool           // switch-to-configuration exits 0 but changes nothing
	dropActivate  bool           // the connection drops while activating; the activation goes on
	forget        bool           // with dropActivate: the host loses the activation's state (a reboot wiped /run)
	downAfterDrop int            // with dropActivate: the commands after the drop that find the host unreachable
	down          int            // the next down commands (Run or Fresh) find the host unreachable
	freshDown     int            // the next freshDown Freshes cannot connect (the old connection still works)
	watchdogFirst bool           // the dead-man watchdog fires before fleet's confirmation arrives
	onSwitch      func()         // called as switch-to-configuration starts
	neverBack     bool           // a reboot does not come back
}

// activation is the state directory of one detached activation.
type activation struct {
	status     int
	log        string
	confirm    int    // seconds, 0 for no watchdog
	prev       string // the watchdog's fallback
	decided    bool
	rolledback string // the watchdog's report, once it rolled back
}

// newFake is a machine running system gens[gen], as user.
func newFake(t *testing.T, user string, gen int, gens map[int]string) *fakeHost {
	f := &fakeHost{t: t, user: user, gens: maps.Clone(gens), gen: gen, acts: map[string]*activation{}, bootID: "boot-1"}
	if f.gens == nil {
		f.gens = map[int]string{}
	}
	f.current = f.gens[gen]
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
	if slices.Equal(cmd.Argv, nixserve.Command) {
		return f.serve(cmd) // push_test.go
	}
	if cmd.Stdin != nil {
		io.Copy(io.Discard, cmd.Stdin)
	}
	out, code, err := f.exec(ctx, cmd.Argv)
	if err != nil {
		return err
	}
	if cmd.Stdout != nil {
		io.WriteString(cmd.Stdout, out)
	}
	if code != 0 {
		return &remote.ExitError{Host: "fake", Command: line, Code: code, Stderr: out}
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
		case strings.HasSuffix(argv[1], "/rolledback"):
			a := f.acts[strings.TrimSuffix(argv[1], "/rolledback")]
			if a != nil && a.confirm > 0 && !a.decided {
				f.watchdog(a) // fleet asks after the window: it has passed
			}
			if a == nil || a.rolledback == "" {
				return "cat: no such file", 1, nil
			}
			return a.rolledback, 0, nil
		}
	case "sh":
		return f.script(ctx, argv[2], argv[3:])
	}
	f.t.Errorf("fake host: unexpected command %q", argv)
	return "unexpected command", 127, nil
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
		// fleet-activate dir closure goal confirm prev
		dir, closure, goal, prev := args[1], args[2], args[3], args[5]
		confirm, _ := strconv.Atoi(args[4])
		if f.onSwitch != nil {
			f.onSwitch()
		}
		if ctx.Err() != nil {
			return "", 0, fmt.Errorf("fake: %w", ctx.Err())
		}
		a := &activation{confirm: confirm, prev: prev}
		f.acts[dir] = a
		a.log, a.status = f.switchTo(closure, goal)
		if f.watchdogFirst && a.status == 0 {
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
		return a.log, a.status, nil
	case collectScript:
		a := f.acts[args[1]]
		if a == nil {
			return "no activation state in " + args[1], 112, nil
		}
		return a.log, a.status, nil
	case confirmScript:
		a := f.acts[args[1]]
		if a == nil || a.decided {
			return "", 1, nil
		}
		a.decided = true
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

// switchTo is closure's switch-to-configuration goal.
func (f *fakeHost) switchTo(closure, goal string) (string, int) {
	if code := f.failSwitch[closure]; code != 0 {
		return "switching to " + closure + ": failed", code
	}
	if (goal == "switch" || goal == "test") && !f.noopSwitch {
		f.current = closure
	}
	return "switching to " + closure, 0
}

// watchdog is the dead-man switch of a, firing: it rolls back to a.prev.
func (f *fakeHost) watchdog(a *activation) {
	a.decided = true
	f.set(a.prev)
	log, code := f.switchTo(a.prev, "switch")
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
