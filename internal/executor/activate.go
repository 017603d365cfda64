package executor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

const (
	systemProfile = "/nix/var/nix/profiles/system"
	currentSystem = "/run/current-system"
)

// ActivateScript runs switch-to-configuration detached from the SSH
// session (setsid, output to a file), so that a dropped connection does
// not kill an activation half way; it then waits for the exit status and
// replays the log on stderr.
//
// With a dead-man window (confirm > 0) it first arms a watchdog, also
// detached: once the switch has succeeded it waits confirm seconds and,
// unless fleet has confirmed (mkdir decided + confirmed, from a fresh
// connection), switches back to prev itself. mkdir makes the decision
// atomic: either the confirmation or the rollback wins, never both.
//
// Arguments: state dir, closure, goal, confirm seconds, previous system.
// The script is a constant: user data only ever arrives as quoted
// arguments.
const ActivateScript = `dir=$1 closure=$2 goal=$3 confirm=$4 prev=$5
mkdir -p "$dir" && rm -rf "$dir/status" "$dir/log" "$dir/decided" "$dir/confirmed" "$dir/rolledback" || exit 111
if [ "$confirm" -gt 0 ] && [ -n "$prev" ]; then
  setsid sh -c '
    dir=$0 confirm=$1 prev=$2
    while [ ! -e "$dir/status" ]; do sleep 0.1; done
    [ "$(cat "$dir/status")" = 0 ] || exit 0
    sleep "$confirm"
    mkdir "$dir/decided" 2>/dev/null || exit 0
    {
      echo "not confirmed within ${confirm}s: rolling back to $prev"
      nix-env --profile /nix/var/nix/profiles/system --set "$prev" && "$prev/bin/switch-to-configuration" switch
      echo "exit $?"
    } >"$dir/rolledback.tmp" 2>&1
    mv "$dir/rolledback.tmp" "$dir/rolledback"
  ' "$dir" "$confirm" "$prev" </dev/null >/dev/null 2>&1 &
fi
setsid sh -c '"$1/bin/switch-to-configuration" "$2" >"$0/log" 2>&1; echo $? >"$0/status.tmp"; mv "$0/status.tmp" "$0/status"' "$dir" "$closure" "$goal" </dev/null >/dev/null 2>&1 &
while [ ! -e "$dir/status" ]; do sleep 0.1; done
cat "$dir/log" >&2
exit "$(cat "$dir/status")"
`

// collectScript waits for a detached activation started by
// activateScript and reports it the same way. Argument: state dir.
const collectScript = `dir=$1
[ -d "$dir" ] || { echo "no activation state in $dir" >&2; exit 112; }
while [ ! -e "$dir/status" ]; do sleep 0.1; done
cat "$dir/log" >&2
exit "$(cat "$dir/status")"
`

// confirmScript confirms a new system, unless the watchdog already
// decided to roll back (exit 1). Argument: state dir.
const confirmScript = `mkdir "$1/decided" 2>/dev/null && touch "$1/confirmed"`

// Activate makes closure h's system for o.Goal: the system profile gets
// a new generation (switch, boot), then the closure's
// switch-to-configuration runs. If activation fails the profile is set
// back, so the next boot is the previous generation again.
func (e *Executor) Activate(ctx context.Context, h *runtime.Host, closure string, o runtime.ActivateOptions) (*runtime.ActivateResult, error) {
	if !isStorePath(closure) {
		return nil, &runtime.HostError{Host: h.Name, Step: "activate", Err: fmt.Errorf("%q is not a /nix/store path", closure)}
	}
	m, err := e.machine(h)
	if err != nil {
		return nil, hostErr(h, "activate", err)
	}
	return m.activate(ctx, closure, o)
}

func (m *machine) activate(ctx context.Context, closure string, o runtime.ActivateOptions) (*runtime.ActivateResult, error) {
	goal := o.Goal
	prev, err := m.readlink(ctx, currentSystem)
	if err != nil {
		return nil, hostErr(m.h, "activate", err)
	}
	setProfile := goal == "switch" || goal == "boot"
	var prevGen int
	if setProfile {
		if prevGen, err = m.generation(ctx); err != nil {
			return nil, hostErr(m.h, "activate", err)
		}
		if _, err := m.run(ctx, asRoot, nil, "nix-env", "--profile", systemProfile, "--set", closure); err != nil {
			return nil, hostErr(m.h, "activate", fmt.Errorf("setting the system profile: %w", err))
		}
	}
	confirm := int(o.Confirm / time.Second)
	if prev == "" || prev == closure {
		confirm = 0 // nothing to fall back to, or nothing changes
	}
	dir := fmt.Sprintf("/run/fleet/%s-%s", m.runID, m.h.Name)
	err = m.switchTo(ctx, dir, closure, goal, confirm, prev)
	if err != nil {
		if setProfile {
			m.restoreProfile(ctx, prevGen)
		}
		return nil, err
	}
	if confirm > 0 {
		if err := m.confirm(ctx, dir, prev, o.Confirm); err != nil {
			return nil, err
		}
	}
	res := &runtime.ActivateResult{Previous: prev, Current: prev}
	switch goal {
	case "switch", "test":
		cur, err := m.readlink(ctx, currentSystem)
		if err != nil {
			return nil, hostErr(m.h, "activate", err)
		}
		if cur != closure {
			return nil, hostErr(m.h, "activate", fmt.Errorf("switch-to-configuration %s succeeded but /run/current-system is %q", goal, cur))
		}
		res.Current = cur
	case "boot":
		cur, err := m.readlink(ctx, "-f", systemProfile)
		if err != nil {
			return nil, hostErr(m.h, "activate", err)
		}
		if cur != closure {
			return nil, hostErr(m.h, "activate", fmt.Errorf("the system profile is %q, not the new closure", cur))
		}
	}
	return res, nil
}

// switchTo runs closure's switch-to-configuration goal, detached, and
// collects its outcome, reconnecting if the connection drops meanwhile.
func (m *machine) switchTo(ctx context.Context, dir, closure, goal string, confirm int, prev string) error {
	_, err := m.run(ctx, asRoot, nil, "sh", "-c", ActivateScript, "fleet-activate", dir, closure, goal, fmt.Sprint(confirm), prev)
	if err != nil && isConnErr(err) && ctx.Err() == nil {
		err = m.collect(ctx, dir)
	}
	var ee *remote.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return &runtime.HostError{Host: m.h.Name, Step: "activate",
			Err: fmt.Errorf("%s/bin/switch-to-configuration %s exited with status %d", closure, goal, ee.Code),
			Log: logTail(ee.Stderr)}
	}
	return hostErr(m.h, "activate", fmt.Errorf("switch-to-configuration %s: %w", goal, err))
}

// confirm proves the new system still lets fleet in: a fresh SSH
// connection, within the window, marks it confirmed. Failing that, the
// host rolls itself back; confirm waits for that and reports it.
func (m *machine) confirm(ctx context.Context, dir, prev string, window time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, window)
	_, err := m.fresh(cctx, asRoot, "sh", "-c", confirmScript, "fleet-confirm", dir)
	cancel()
	if err == nil {
		return nil
	}
	why := fmt.Errorf("the new system was not confirmed within %v (%v): the host rolls itself back to %s", window, err, prev)
	// Wait for the host's own rollback and check it took.
	deadline := m.clock.Now().Add(window + 2*time.Minute)
	for m.clock.Now().Before(deadline) && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, rerr := m.fresh(rctx, asRoot, "cat", dir+"/rolledback")
		cancel()
		if rerr == nil {
			cur, _ := m.readlink(ctx, currentSystem)
			if cur == prev {
				return &runtime.HostError{Host: m.h.Name, Step: "activate", Err: fmt.Errorf("%v; it did, and runs %s again", why, prev), Log: logTail(out)}
			}
			return &runtime.HostError{Host: m.h.Name, Step: "activate", Err: fmt.Errorf("%v; it tried, but runs %q", why, cur), Log: logTail(out)}
		}
		m.clock.Sleep(ctx, time.Second)
	}
	return &runtime.HostError{Host: m.h.Name, Step: "activate", Err: fmt.Errorf("%v; fleet could not reach it since", why)}
}

var genRE = regexp.MustCompile(`^system-([0-9]+)-link$`)

// generation is the number of the system profile's current generation,
// 0 if there is none.
func (m *machine) generation(ctx context.Context) (int, error) {
	link, err := m.readlink(ctx, systemProfile)
	if err != nil || link == "" {
		return 0, err
	}
	g := genRE.FindStringSubmatch(strings.TrimPrefix(link, "/nix/var/nix/profiles/"))
	if g == nil {
		return 0, nil
	}
	var n int
	fmt.Sscan(g[1], &n)
	return n, nil
}

// restoreProfile points the system profile back at generation gen and
// deletes the failed generation, so that the next boot and the next
// rollback both see the previous system. Best effort, on a fresh
// context: an interrupt must not leave the profile ahead of the system.
func (m *machine) restoreProfile(ctx context.Context, gen int) {
	if gen == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	failed, _ := m.generation(rctx)
	if _, err := m.run(rctx, asRoot, nil, "nix-env", "--profile", systemProfile, "--switch-generation", fmt.Sprint(gen)); err != nil {
		return
	}
	if failed > gen {
		m.run(rctx, asRoot, nil, "nix-env", "--profile", systemProfile, "--delete-generations", fmt.Sprint(failed))
	}
}

// Rollback steps the system profile back one generation and switches to
// that system.
func (e *Executor) Rollback(ctx context.Context, h *runtime.Host) (*runtime.ActivateResult, error) {
	m, err := e.machine(h)
	if err != nil {
		return nil, hostErr(h, "rollback", err)
	}
	return m.rollback(ctx)
}

func (m *machine) rollback(ctx context.Context) (*runtime.ActivateResult, error) {
	prev, err := m.readlink(ctx, currentSystem)
	if err != nil {
		return nil, hostErr(m.h, "rollback", err)
	}
	if _, err := m.run(ctx, asRoot, nil, "nix-env", "--profile", systemProfile, "--rollback"); err != nil {
		return nil, hostErr(m.h, "rollback", fmt.Errorf("no previous generation to roll back to: %w", err))
	}
	target, err := m.readlink(ctx, "-f", systemProfile)
	if err != nil || !isStorePath(target) {
		return nil, hostErr(m.h, "rollback", fmt.Errorf("the system profile points at %q: %v", target, err))
	}
	dir := fmt.Sprintf("/run/fleet/%s-%s-rollback", m.runID, m.h.Name)
	if err := m.switchTo(ctx, dir, target, "switch", 0, ""); err != nil {
		if he, ok := err.(*runtime.HostError); ok {
			he.Step = "rollback"
		}
		return nil, err
	}
	return &runtime.ActivateResult{Previous: prev, Current: target}, nil
}

// collect reconnects to the machine after the connection dropped during
// an activation and waits for the detached activation's outcome.
func (m *machine) collect(ctx context.Context, dir string) error {
	var err error
	for delay := 500 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		_, err = m.run(ctx, asRoot, nil, "sh", "-c", collectScript, "fleet-collect", dir)
		if err == nil || !isConnErr(err) || ctx.Err() != nil {
			return err
		}
		if m.clock.Sleep(ctx, delay) != nil {
			return err
		}
		if delay >= 5*time.Second {
			return fmt.Errorf("lost the connection during activation and could not reconnect: %w", err)
		}
	}
}
