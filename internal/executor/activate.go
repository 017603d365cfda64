package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

const systemProfile = "/nix/var/nix/profiles/system"

// activateScript runs switch-to-configuration detached from the SSH
// session (setsid, output to a file), so that a dropped connection does
// not kill an activation half way; it then waits for the exit status and
// replays the log on stderr. Arguments: state dir, closure, goal. The
// script is a constant: user data only ever arrives as quoted arguments.
const activateScript = `dir=$1 closure=$2 goal=$3
mkdir -p "$dir" && rm -f "$dir/status" "$dir/log" || exit 111
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

// Activate makes closure h's system for goal: the system profile gets a
// new generation (switch, boot), then the closure's
// switch-to-configuration runs. If activation fails the profile is set
// back, so the next boot is the previous generation again.
func (e *Executor) Activate(ctx context.Context, h *runtime.Host, closure, goal string) (*runtime.ActivateResult, error) {
	if !isStorePath(closure) {
		return nil, &runtime.HostError{Host: h.Name, Step: "activate", Err: fmt.Errorf("%q is not a /nix/store path", closure)}
	}
	sudo := h.TargetUser != "root"
	prev, err := e.readlink(ctx, h, "/run/current-system")
	if err != nil {
		return nil, hostErr(h, "activate", err)
	}
	setProfile := goal == "switch" || goal == "boot"
	prevProfile := ""
	if setProfile {
		if prevProfile, err = e.readlink(ctx, h, "-f", systemProfile); err != nil {
			return nil, hostErr(h, "activate", err)
		}
		if _, err := e.run(ctx, h, sudo, nil, "nix-env", "--profile", systemProfile, "--set", closure); err != nil {
			return nil, hostErr(h, "activate", fmt.Errorf("setting the system profile: %w", err))
		}
	}
	dir := fmt.Sprintf("/run/fleet/%s-%s", e.runID, h.Name)
	_, err = e.run(ctx, h, sudo, nil, "sh", "-c", activateScript, "fleet-activate", dir, closure, goal)
	if errors.Is(err, remote.ErrConnLost) && ctx.Err() == nil {
		err = e.collect(ctx, h, sudo, dir)
	}
	if err != nil {
		if setProfile && prevProfile != "" && prevProfile != closure {
			// Best effort, on a fresh context: an interrupt must not
			// leave the profile ahead of the running system.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			e.run(rctx, h, sudo, nil, "nix-env", "--profile", systemProfile, "--set", prevProfile)
			cancel()
		}
		var ee *remote.ExitError
		if errors.As(err, &ee) {
			return nil, &runtime.HostError{Host: h.Name, Step: "activate",
				Err: fmt.Errorf("%s/bin/switch-to-configuration %s exited with status %d", closure, goal, ee.Code),
				Log: tail(string(ee.Stderr), 20)}
		}
		return nil, hostErr(h, "activate", fmt.Errorf("switch-to-configuration %s: %w", goal, err))
	}
	res := &runtime.ActivateResult{Previous: prev, Current: prev}
	switch goal {
	case "switch", "test":
		cur, err := e.readlink(ctx, h, "/run/current-system")
		if err != nil {
			return nil, hostErr(h, "activate", err)
		}
		if cur != closure {
			return nil, hostErr(h, "activate", fmt.Errorf("switch-to-configuration %s succeeded but /run/current-system is %q", goal, cur))
		}
		res.Current = cur
	case "boot":
		cur, err := e.readlink(ctx, h, "-f", systemProfile)
		if err != nil {
			return nil, hostErr(h, "activate", err)
		}
		if cur != closure {
			return nil, hostErr(h, "activate", fmt.Errorf("the system profile is %q, not the new closure", cur))
		}
	}
	return res, nil
}

// collect reconnects to h after the connection dropped during an
// activation and waits for the detached activation's outcome.
func (e *Executor) collect(ctx context.Context, h *runtime.Host, sudo bool, dir string) error {
	var err error
	for delay := 500 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		_, err = e.run(ctx, h, sudo, nil, "sh", "-c", collectScript, "fleet-collect", dir)
		if err == nil || !isConnErr(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		if delay >= 5*time.Second {
			return fmt.Errorf("lost the connection during activation and could not reconnect: %w", err)
		}
	}
}

// isConnErr reports whether err is about reaching the host rather than
// about the command.
func isConnErr(err error) bool {
	var ee *remote.ExitError
	return !errors.As(err, &ee)
}

// readlink returns the target of a link on h, "" if there is none.
func (e *Executor) readlink(ctx context.Context, h *runtime.Host, args ...string) (string, error) {
	out, err := e.run(ctx, h, false, nil, append([]string{"readlink"}, args...)...)
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return "", nil
	}
	return strings.TrimSpace(out), err
}
