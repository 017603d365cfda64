package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/shell"
	"github.com/fleet-deploy/fleet/runtime"
)

const (
	sys1 = "/nix/store/11111111111111111111111111111111-nixos-system-1"
	sys2 = "/nix/store/22222222222222222222222222222222-nixos-system-2"
	sys3 = "/nix/store/33333333333333333333333333333333-nixos-system-3"
)

var (
	oneGen  = map[int]string{1: sys1}
	twoGens = map[int]string{1: sys1, 2: sys2}
	testH   = &runtime.Host{Name: "web", TargetHost: "web", TargetUser: "root"}
)

// opCase is one operation on a fake host, and what it must leave.
type opCase struct {
	name  string
	user  string         // "" for root
	gens  map[int]string // the profile's generations before; the newest runs
	fault func(f *fakeHost, cancel context.CancelFunc)
	want  state  // the fake host afterwards
	err   string // part of the error, "" for none
}

// setup starts c's fake host and an Executor on it.
func (c opCase) setup(t *testing.T) (*fakeHost, *Executor, *fakeClock, context.Context) {
	t.Helper()
	user := c.user
	if user == "" {
		user = "root"
	}
	gen := 0
	for n := range c.gens {
		gen = max(gen, n)
	}
	f := newFake(t, user, gen, c.gens)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if c.fault != nil {
		c.fault(f, cancel)
	}
	e, clk := fakeExecutor(f)
	t.Cleanup(func() { e.Close() })
	return f, e, clk, ctx
}

// check compares the error and the fake host's final state with c's.
func (c opCase) check(t *testing.T, f *fakeHost, err error) {
	t.Helper()
	switch {
	case c.err == "" && err != nil:
		t.Errorf("error: %v", err)
	case c.err != "" && err == nil:
		t.Errorf("no error, want one with %q", c.err)
	case c.err != "" && !strings.Contains(err.Error(), c.err):
		t.Errorf("error %q\nwant it to contain %q", err, c.err)
	}
	if err != nil {
		var he *runtime.HostError
		if !errors.As(err, &he) || he.Host != testH.Name {
			t.Errorf("error %v is not a HostError of %s", err, testH.Name)
		}
	}
	want := c.want
	if want.Gens == nil {
		want.Gens = map[int]string{}
	}
	if got := f.state(); !reflect.DeepEqual(got, want) {
		t.Errorf("host state\n got %+v\nwant %+v", got, want)
	}
}

// with returns gens with generation n added.
func with(gens map[int]string, n int, closure string) map[int]string {
	g := maps.Clone(gens)
	if g == nil {
		g = map[int]string{}
	}
	g[n] = closure
	return g
}

func TestActivate(t *testing.T) {
	tests := []struct {
		opCase
		closure string
		goal    string
		res     *runtime.ActivateResult
	}{
		{opCase: opCase{name: "switch", gens: twoGens,
			want: state{sys3, 3, with(twoGens, 3, sys3)}},
			closure: sys3, goal: "switch", res: &runtime.ActivateResult{Previous: sys2, Current: sys3, Generation: 3, Boot: sys3}},
		{opCase: opCase{name: "boot sets the profile only", gens: twoGens,
			want: state{sys2, 3, with(twoGens, 3, sys3)}},
			closure: sys3, goal: "boot", res: &runtime.ActivateResult{Previous: sys2, Current: sys2, Generation: 3, Boot: sys3}},
		{opCase: opCase{name: "test switches without a generation", gens: twoGens,
			want: state{sys3, 2, twoGens}},
			closure: sys3, goal: "test", res: &runtime.ActivateResult{Previous: sys2, Current: sys3, Generation: 2, Boot: sys2}},
		{opCase: opCase{name: "dry-activate changes nothing", gens: twoGens,
			want: state{sys2, 2, twoGens}},
			closure: sys3, goal: "dry-activate", res: &runtime.ActivateResult{Previous: sys2, Current: sys2, Generation: 2, Boot: sys2}},
		{opCase: opCase{name: "first deployment",
			want: state{sys3, 1, with(nil, 1, sys3)}},
			closure: sys3, goal: "switch", res: &runtime.ActivateResult{Current: sys3, Generation: 1, Boot: sys3}},

		{opCase: opCase{name: "failed switch restores the profile", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.failSwitch = map[string]int{sys3: 4} },
			want:  state{sys2, 2, twoGens},
			err:   "switch-to-configuration switch exited with status 4; the profile is back at generation 2"},
			closure: sys3, goal: "switch"},
		{opCase: opCase{name: "failed boot restores the profile", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.failSwitch = map[string]int{sys3: 1} },
			want:  state{sys2, 2, twoGens},
			err:   "switch-to-configuration boot exited with status 1"},
			closure: sys3, goal: "boot"},
		{opCase: opCase{name: "failed test leaves the profile alone", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.failSwitch = map[string]int{sys3: 1} },
			want:  state{sys2, 2, twoGens},
			err:   "switch-to-configuration test exited with status 1"},
			closure: sys3, goal: "test"},
		{opCase: opCase{name: "failed first deployment has no profile to go back to",
			fault: func(f *fakeHost, _ context.CancelFunc) { f.failSwitch = map[string]int{sys3: 1} },
			want:  state{"", 1, with(nil, 1, sys3)},
			err:   "exited with status 1"},
			closure: sys3, goal: "switch"},
		{opCase: opCase{name: "interrupt waits for the activation and reports what the host runs", gens: twoGens,
			fault: func(f *fakeHost, cancel context.CancelFunc) { f.onSwitch = cancel },
			want:  state{sys3, 3, with(twoGens, 3, sys3)}},
			closure: sys3, goal: "switch", res: &runtime.ActivateResult{Previous: sys2, Current: sys3, Generation: 3, Boot: sys3}},
		{opCase: opCase{name: "interrupt during boot leaves profile and boot entry together", gens: twoGens,
			fault: func(f *fakeHost, cancel context.CancelFunc) { f.onSwitch = cancel },
			want:  state{sys2, 3, with(twoGens, 3, sys3)}},
			closure: sys3, goal: "boot", res: &runtime.ActivateResult{Previous: sys2, Current: sys2, Generation: 3, Boot: sys3}},
		{opCase: opCase{name: "interrupt: the activation still runs, the profile is not touched", gens: twoGens,
			fault: func(f *fakeHost, cancel context.CancelFunc) {
				f.onSwitch = cancel
				f.stillRunning = true
			},
			want: state{sys3, 3, with(twoGens, 3, sys3)},
			err:  "interrupted: activation still running on web"},
			closure: sys3, goal: "switch"},
		{opCase: opCase{name: "switch that changes nothing is a failure, profile restored", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.noopSwitch = true },
			want:  state{sys2, 2, twoGens},
			err:   "switch-to-configuration switch exited 0 but the host does not run it (/run/current-system is " + `"` + sys2 + `")`},
			closure: sys3, goal: "switch"},
		{opCase: opCase{name: "units failed: switched, with a warning, profile kept", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.unitsFailed = map[string]bool{sys3: true} },
			want:  state{sys3, 3, with(twoGens, 3, sys3)}},
			closure: sys3, goal: "switch", res: &runtime.ActivateResult{Previous: sys2, Current: sys3, Generation: 3, Boot: sys3,
				Warning: "switched, with failed units (switch-to-configuration switch exited with status 4)"}},
		{opCase: opCase{name: "NixOS's switch lock is held: nothing changes", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.nixosLocked = true },
			want:  state{sys2, 2, twoGens},
			err:   "another switch is running on web (switch-to-configuration's lock is held); nothing changed"},
			closure: sys3, goal: "switch"},
		{opCase: opCase{name: "NixOS's lock taken during the profile update: exit 11, profile restored", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.failSwitch = map[string]int{sys3: 11} },
			want:  state{sys2, 2, twoGens},
			err:   "another switch is running on web"},
			closure: sys3, goal: "switch"},
		{opCase: opCase{name: "another deploy holds the host lock: the session waits", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.lockedBy = "started at T by u@d (run r)" },
			want:  state{sys3, 3, with(twoGens, 3, sys3)}},
			closure: sys3, goal: "switch", res: &runtime.ActivateResult{Previous: sys2, Current: sys3, Generation: 3, Boot: sys3}},
		{opCase: opCase{name: "not a store path", gens: twoGens,
			want: state{sys2, 2, twoGens},
			err:  `"/tmp/system" is not a /nix/store path`},
			closure: "/tmp/system", goal: "switch"},
		{opCase: opCase{name: "unreachable", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.down = 1 },
			want:  state{sys2, 2, twoGens},
			err:   "ssh connection lost"},
			closure: sys3, goal: "switch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, _, ctx := tt.setup(t)
			res, err := e.Activate(ctx, testH, tt.closure, runtime.ActivateOptions{Goal: tt.goal})
			tt.check(t, f, err)
			if !reflect.DeepEqual(res, tt.res) {
				t.Errorf("result %+v, want %+v", res, tt.res)
			}
		})
	}
}

// TestActivateCollect drops the connection while the detached
// activation runs: fleet reconnects and collects its outcome, without
// starting it again.
func TestActivateCollect(t *testing.T) {
	drop := func(more func(f *fakeHost)) func(*fakeHost, context.CancelFunc) {
		return func(f *fakeHost, _ context.CancelFunc) {
			f.dropActivate = true
			if more != nil {
				more(f)
			}
		}
	}
	tests := []struct {
		opCase
		slept []time.Duration // the waits between reconnections
	}{
		{opCase: opCase{name: "reconnects at once", gens: twoGens, fault: drop(nil),
			want: state{sys3, 3, with(twoGens, 3, sys3)}}},
		{opCase: opCase{name: "reconnects on the third try", gens: twoGens,
			fault: drop(func(f *fakeHost) { f.downAfterDrop = 2 }),
			want:  state{sys3, 3, with(twoGens, 3, sys3)}},
			slept: []time.Duration{500 * time.Millisecond, time.Second}},
		{opCase: opCase{name: "activation failed meanwhile", gens: twoGens,
			fault: drop(func(f *fakeHost) { f.failSwitch = map[string]int{sys3: 2} }),
			want:  state{sys2, 2, twoGens},
			err:   "switch-to-configuration switch exited with status 2"}},
		{opCase: opCase{name: "the host lost the activation", gens: twoGens,
			fault: drop(func(f *fakeHost) { f.forget = true }),
			want:  state{sys3, 3, with(twoGens, 3, sys3)}, // the activation had run, and decided
			err:   "ssh connection lost, and the host has no record of the activation"}},
		{opCase: opCase{name: "never reconnects", gens: twoGens,
			fault: drop(func(f *fakeHost) { f.downAfterDrop = 1 << 30 }),
			want:  state{sys3, 3, with(twoGens, 3, sys3)},
			err:   "lost the connection during activation and could not reconnect"},
			slept: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, clk, ctx := tt.setup(t)
			_, err := e.Activate(ctx, testH, sys3, runtime.ActivateOptions{Goal: "switch"})
			tt.check(t, f, err)
			if n := count(f, "fleet-activate"); n != 1 {
				t.Errorf("%d activations, want 1", n)
			}
			if !slices.Equal(clk.slept, tt.slept) {
				t.Errorf("waited %v, want %v", clk.slept, tt.slept)
			}
		})
	}
}

// TestActivateConfirm arms the dead-man switch: fleet confirms over a
// fresh connection, or the host rolls itself back and fleet reports it.
func TestActivateConfirm(t *testing.T) {
	const window = 30 * time.Second
	tests := []struct {
		opCase
		closure  string
		confirms int // confirmations fleet sent
	}{
		{opCase: opCase{name: "confirmed", gens: twoGens,
			want: state{sys3, 3, with(twoGens, 3, sys3)}},
			closure: sys3, confirms: 1},
		{opCase: opCase{name: "new connections refused: the host rolls back and deletes the failed generation", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.freshDown = 1 },
			want:  state{sys2, 2, twoGens},
			err:   "the new system was not confirmed within 30s (fake: connection refused): the host rolls itself back to " + sys2 + "; it did, and runs " + sys2 + " again"},
			closure: sys3, confirms: 0},
		{opCase: opCase{name: "the watchdog decided first", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.watchdogFirst = true },
			want:  state{sys2, 2, twoGens},
			err:   "; it did, and runs " + sys2 + " again"},
			closure: sys3, confirms: 1},
		{opCase: opCase{name: "the host's rollback fails", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) {
				f.freshDown = 1
				f.failSwitch = map[string]int{sys2: 1}
			},
			// The failed generation stays: the boot entry points at it.
			want: state{sys3, 2, with(twoGens, 3, sys3)},
			err:  `; it tried, but runs "` + sys3 + `"`},
			closure: sys3, confirms: 0},
		{opCase: opCase{name: "unreachable after activating", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.freshDown = 1 << 30 },
			want:  state{sys3, 3, with(twoGens, 3, sys3)},
			err:   "; fleet could not reach it since"},
			closure: sys3, confirms: 0},
		{opCase: opCase{name: "first deployment: nothing to fall back to",
			want: state{sys3, 1, with(nil, 1, sys3)}},
			closure: sys3, confirms: 0},
		{opCase: opCase{name: "slow confirmation the host recorded: confirmed", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.slowConfirm = true },
			want:  state{sys3, 3, with(twoGens, 3, sys3)}},
			closure: sys3, confirms: 1},
		{opCase: opCase{name: "interrupted during the switch: still confirmed", gens: twoGens,
			fault: func(f *fakeHost, cancel context.CancelFunc) { f.onSwitch = cancel },
			want:  state{sys3, 3, with(twoGens, 3, sys3)}},
			closure: sys3, confirms: 1},
		{opCase: opCase{name: "same system: nothing changes, no new generation", gens: twoGens,
			want: state{sys2, 2, twoGens}},
			closure: sys2, confirms: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, clk, ctx := tt.setup(t)
			_, err := e.Activate(ctx, testH, tt.closure, runtime.ActivateOptions{Goal: "switch", Confirm: window})
			tt.check(t, f, err)
			if n := count(f, "fleet-confirm"); n != tt.confirms {
				t.Errorf("%d confirmations, want %d", n, tt.confirms)
			}
			if strings.Contains(tt.err, "could not reach") {
				if waited := clk.Now().Sub(time.Unix(0, 0)); waited < window+2*time.Minute {
					t.Errorf("gave up after %v, want the window and two minutes", waited)
				}
			}
		})
	}
}

func TestRollback(t *testing.T) {
	tests := []struct {
		opCase
		res *runtime.ActivateResult
	}{
		{opCase: opCase{name: "one generation back", gens: twoGens,
			want: state{sys1, 1, twoGens}},
			res: &runtime.ActivateResult{Previous: sys2, Current: sys1, Generation: 1, Boot: sys1}},
		{opCase: opCase{name: "no older generation", gens: oneGen,
			want: state{sys1, 1, oneGen},
			err:  "rollback failed: no previous generation to roll back to"}},
		{opCase: opCase{name: "the older system fails to switch", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.failSwitch = map[string]int{sys1: 3} },
			want:  state{sys2, 1, twoGens},
			err:   "web: rollback failed: switch-to-configuration switch exited with status 3"}},
		{opCase: opCase{name: "connection drops while switching", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.dropActivate = true },
			want:  state{sys1, 1, twoGens}},
			res: &runtime.ActivateResult{Previous: sys2, Current: sys1, Generation: 1, Boot: sys1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, _, ctx := tt.setup(t)
			res, err := e.Rollback(ctx, testH, nil)
			tt.check(t, f, err)
			if !reflect.DeepEqual(res, tt.res) {
				t.Errorf("result %+v, want %+v", res, tt.res)
			}
		})
	}
}

// TestPrivilege: commands that need root go through sudo exactly when
// the host's user is not root; reading links never does.
func TestPrivilege(t *testing.T) {
	for _, tt := range []struct {
		user string
		want []string
	}{
		{"root", []string{"sh -c fleet-activate"}},
		{"deploy", []string{"sudo sh -c fleet-activate"}},
	} {
		t.Run(tt.user, func(t *testing.T) {
			f, e, _, ctx := opCase{user: tt.user, gens: twoGens}.setup(t)
			if _, err := e.Activate(ctx, testH, sys3, runtime.ActivateOptions{Goal: "switch"}); err != nil {
				t.Fatal(err)
			}
			if got := commands(f); !slices.Equal(got, tt.want) {
				t.Errorf("commands\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestReboot waits for a new boot id over fresh connections.
func TestReboot(t *testing.T) {
	tests := []opCase{
		{name: "back with a new boot id", gens: twoGens, want: state{sys2, 2, twoGens}},
		{name: "not back", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.neverBack = true },
			want:  state{sys2, 2, twoGens},
			err:   "reboot failed: not back within 1m0s: fake: ssh connection lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, _, ctx := tt.setup(t)
			_, err := e.Reboot(ctx, testH, runtime.RebootOptions{Timeout: time.Minute})
			tt.check(t, f, err)
			if f.redials != 1 {
				t.Errorf("%d redials, want 1: the old connection dies with the reboot", f.redials)
			}
		})
	}
}

// TestHostPerMachine: the Executor builds a host's Host once, on first
// use, whatever the steps; one that fails to build is tried again.
func TestHostPerMachine(t *testing.T) {
	f := newFake(t, "root", 2, twoGens)
	e, _ := fakeExecutor(f)
	built := 0
	fail := true
	e.newHost = func(*runtime.Host) (Host, error) {
		built++
		if fail {
			fail = false
			return nil, errors.New("ssh_config: bad")
		}
		return f, nil
	}
	ctx := context.Background()
	if _, err := e.Run(ctx, testH, []string{"readlink", currentSystem}); err == nil || !strings.Contains(err.Error(), "web: run failed: ssh_config: bad") {
		t.Fatalf("Run: %v", err)
	}
	if _, err := e.Activate(ctx, testH, sys3, runtime.ActivateOptions{Goal: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rollback(ctx, testH, nil); err != nil {
		t.Fatal(err)
	}
	if built != 2 {
		t.Errorf("Host built %d times, want 2 (a failure, then once)", built)
	}
}

// commands is the fake host's log with scripts named by their $0.
func commands(f *fakeHost) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.log {
		for _, s := range []string{ActivateScript, collectScript, confirmScript, outcomeScript, previousScript, rebootScript, pushScript} {
			if i := strings.Index(l, s); i >= 0 {
				name, _, _ := strings.Cut(strings.TrimSpace(l[i+len(s):]), " ")
				l = l[:i] + name
			}
		}
		out = append(out, l)
	}
	return out
}

// count is how many commands of f's log mention s.
func count(f *fakeHost, s string) int {
	n := 0
	for _, l := range commands(f) {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// TestRollbackToRecord: rollback returns to what the host ran before
// this run, not to "profile minus one", and deletes the generation the
// run added, so that no later rollback lands on it.
func TestRollbackToRecord(t *testing.T) {
	tests := []struct {
		opCase
		goal string
		res  *runtime.ActivateResult
	}{
		{opCase: opCase{name: "after a switch: back to the previous system, its generation deleted", gens: twoGens,
			want: state{sys2, 4, with(twoGens, 4, sys2)}},
			goal: "switch", res: &runtime.ActivateResult{Previous: sys3, Current: sys2, Generation: 4, Boot: sys2}},
		{opCase: opCase{name: "after a test: back to what ran, not one generation older", gens: twoGens,
			want: state{sys2, 2, twoGens}},
			goal: "test", res: &runtime.ActivateResult{Previous: sys3, Current: sys2, Generation: 2, Boot: sys2}},
		{opCase: opCase{name: "after failed units: back, the failed generation deleted", gens: twoGens,
			fault: func(f *fakeHost, _ context.CancelFunc) { f.unitsFailed = map[string]bool{sys3: true} },
			want:  state{sys2, 4, with(twoGens, 4, sys2)}},
			goal: "switch", res: &runtime.ActivateResult{Previous: sys3, Current: sys2, Generation: 4, Boot: sys2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, _, ctx := tt.setup(t)
			if _, err := e.Activate(ctx, testH, sys3, runtime.ActivateOptions{Goal: tt.goal}); err != nil {
				t.Fatal(err)
			}
			res, err := e.Rollback(ctx, testH, nil)
			tt.check(t, f, err)
			if !reflect.DeepEqual(res, tt.res) {
				t.Errorf("result %+v, want %+v", res, tt.res)
			}
		})
	}
}

// TestActivateLocks: another deploy holding the host lock makes the
// session wait, saying whose deploy it waits for, or with NoWait fail at
// once, changing nothing.
func TestActivateLocks(t *testing.T) {
	const holder = "started at 2026-01-01T00:00:00Z by ops@laptop (run abc)"
	for _, noWait := range []bool{false, true} {
		t.Run(fmt.Sprint("noWait=", noWait), func(t *testing.T) {
			f, e, _, _ := opCase{gens: twoGens}.setup(t)
			f.lockedBy = holder
			e.opts.NoWait = noWait
			var logs []string
			_, err := e.Activate(context.Background(), testH, sys3, runtime.ActivateOptions{Goal: "switch",
				Log: func(msg string) { logs = append(logs, msg) }})
			if noWait {
				want := "web: activate failed: web is locked by the deploy " + holder + " (--no-wait)"
				if err == nil || err.Error() != want {
					t.Errorf("error %v\nwant %s", err, want)
				}
				if got := f.state(); got.Current != sys2 || got.Gen != 2 {
					t.Errorf("host changed: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"waiting for the deploy " + holder + " to end"}; !slices.Equal(logs, want) {
				t.Errorf("logs %q, want %q", logs, want)
			}
		})
	}
}

// TestErrorsNameTheStep: no error pastes a remote script.
func TestErrorsNameTheStep(t *testing.T) {
	for name, fault := range map[string]func(*fakeHost){
		"exit status":     func(f *fakeHost) { f.failSwitch = map[string]int{sys3: 1} },
		"lost for good":   func(f *fakeHost) { f.dropActivate, f.downAfterDrop = true, 1<<30 },
		"host lost state": func(f *fakeHost) { f.dropActivate, f.forget = true, true },
		"unreachable":     func(f *fakeHost) { f.down = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			f, e, _, ctx := opCase{gens: twoGens}.setup(t)
			fault(f)
			_, err := e.Activate(ctx, testH, sys3, runtime.ActivateOptions{Goal: "switch"})
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range []string{ActivateScript, collectScript, runnerScript} {
				if strings.Contains(err.Error(), firstLine(s)) || strings.Contains(err.Error(), "flock") {
					t.Errorf("the error pastes a script: %v", err)
				}
			}
		})
	}
}

// TestScrub: a remote error names the script by its $0, not its text.
func TestScrub(t *testing.T) {
	m := &machine{h: testH}
	for _, s := range []string{ActivateScript, collectScript, confirmScript, outcomeScript} {
		cmd, err := shell.Join("sudo", "-n", "--", "sh", "-c", s, "fleet-x", "/run/fleet/r-web", "a b")
		if err != nil {
			t.Fatal(err)
		}
		got := m.scrub(fmt.Errorf("ssh web: %s: %w", cmd, remote.ErrConnLost))
		if want := "ssh web: sudo -n -- fleet-x /run/fleet/r-web 'a b': ssh connection lost"; got != want {
			t.Errorf("scrub:\n got %q\nwant %q", got, want)
		}
	}
}

// TestActivateUnchanged: a host that already runs the closure, its
// profile pointing at it, is left alone — one session, no runner, no
// switch, no new generation — unless told to reactivate.
func TestActivateUnchanged(t *testing.T) {
	for _, tc := range []struct {
		goal       string
		reactivate bool
		runners    int
	}{{"switch", false, 0}, {"test", false, 0}, {"boot", false, 0}, {"switch", true, 1}, {"dry-activate", false, 1}} {
		t.Run(fmt.Sprintf("%s reactivate=%v", tc.goal, tc.reactivate), func(t *testing.T) {
			op := opCase{gens: twoGens, want: state{sys2, 2, twoGens}}
			f, e, _, ctx := op.setup(t)
			f.ok = sys2 // its last switch, to sys2, succeeded
			e.opts.Reactivate = tc.reactivate
			res, err := e.Activate(ctx, testH, sys2, runtime.ActivateOptions{Goal: tc.goal, Confirm: 30 * time.Second})
			op.check(t, f, err)
			if res == nil || res.Previous != sys2 || res.Current != sys2 {
				t.Errorf("result %+v, want %s before and after", res, sys2)
			}
			if len(f.acts) != tc.runners {
				t.Errorf("%d runners started, want %d", len(f.acts), tc.runners)
			}
			if n := count(f, "fleet-confirm"); n != 0 {
				t.Errorf("%d confirmations of an unchanged system", n)
			}
		})
	}
}

// TestActivateAfterFailedSwitch: a host that runs the closure after a
// switch that failed (or never recorded success) is switched again.
func TestActivateAfterFailedSwitch(t *testing.T) {
	op := opCase{gens: twoGens, want: state{sys2, 2, twoGens}}
	f, e, _, ctx := op.setup(t)
	f.ok = "" // no successful switch recorded (failed half way, or rebooted)
	if _, err := e.Activate(ctx, testH, sys2, runtime.ActivateOptions{Goal: "switch"}); err != nil {
		t.Fatal(err)
	}
	if len(f.acts) != 1 {
		t.Errorf("%d runners, want 1: the switch runs again", len(f.acts))
	}
	if f.ok != sys2 {
		t.Errorf("after a good switch the host records %q, want %s", f.ok, sys2)
	}
}
