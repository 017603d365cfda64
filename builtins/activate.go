package builtins

import (
	"context"
	"fmt"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const activateDoc = `activate(host, closure, goal=ctx.goal, confirm=None)

Makes closure the host's system: for switch and boot it becomes the new
generation of the system profile, then the closure's
switch-to-configuration runs with goal (switch, boot, test or
dry-activate), with sudo when the target user is not root, detached from
the SSH session (a systemd unit, or setsid without systemd), under the
host's lock (one deploy at a time). What happens next is decided on the
host by what it runs afterwards: if it neither runs nor boots the new
system, the profile is set back; a switch that exits 4 (or 2) with the
new system running succeeds with the warning "switched, with failed
units" - a check decides what next.

confirm is a dead-man switch (magic rollback): the host arms a timer
before switching and rolls itself back to the system it ran before unless
fleet confirms the new one over a fresh SSH connection within that many
seconds - the case where the new configuration breaks sshd or the
network. None means 30 seconds for switch and test, off otherwise;
False or 0 turns it off. Returns struct(host, goal, previous, current).
Only inside deploy(ctx).`

func activateFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	var closure string
	var goal, confirmV starlark.Value = starlark.None, starlark.None
	if err := starlark.UnpackArgs("activate", args, kwargs, "host", &hostV, "closure", &closure, "goal?", &goal, "confirm?", &confirmV); err != nil {
		return nil, err
	}
	h, err := deployableArg("activate", hostV)
	if err != nil {
		return nil, err
	}
	r, err := deployRun(th, "activate")
	if err != nil {
		return nil, err
	}
	g := r.Goal()
	if goal != starlark.None {
		gs, ok := starlark.AsString(goal)
		if !ok || !runtime.ValidGoal(gs) {
			return nil, fmt.Errorf("activate(): goal must be one of \"switch\", \"boot\", \"test\", \"dry-activate\", got %s", goal)
		}
		g = gs
	}
	confirm, err := confirmArg(confirmV, g)
	if err != nil {
		return nil, err
	}
	var ar *runtime.ActivateResult
	err = r.Step(th, &runtime.Step{
		Host: h.Name, Action: runtime.ActionActivate, Goal: g, Closure: closure,
		Target: h.Target(), Sudo: h.Sudo(), Confirm: int(confirm / time.Second),
	}, func(ctx context.Context, ex runtime.Executor) (res *runtime.StepResult, err error) {
		ar, err = ex.Activate(ctx, h, closure, runtime.ActivateOptions{Goal: g, Confirm: confirm,
			Log: func(msg string) { r.Log(h.Name, msg) }})
		return systemChange(ar, err)
	})
	if err != nil {
		return nil, err
	}
	return result("activation", starlark.StringDict{
		"host":     h,
		"goal":     starlark.String(g),
		"previous": noneIfEmpty(ar.Previous),
		"current":  noneIfEmpty(ar.Current),
	}), nil
}

// systemChange is the step result of an activation or rollback.
func systemChange(ar *runtime.ActivateResult, err error) (*runtime.StepResult, error) {
	if err != nil {
		return nil, err
	}
	return &runtime.StepResult{Previous: ar.Previous, Current: ar.Current, Generation: ar.Generation, Warning: ar.Warning}, nil
}

// DefaultConfirm is the dead-man window of switch and test.
const DefaultConfirm = 30 * time.Second

func confirmArg(v starlark.Value, goal string) (time.Duration, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		if goal == "switch" || goal == "test" {
			return DefaultConfirm, nil
		}
		return 0, nil
	case starlark.Bool:
		if v && (goal == "switch" || goal == "test") {
			return DefaultConfirm, nil
		}
		return 0, nil
	}
	secs, err := starlark.AsInt32(v)
	if err != nil || secs < 0 {
		return 0, fmt.Errorf("activate(): confirm must be None, a bool or a number of seconds, got %s", v)
	}
	return time.Duration(secs) * time.Second, nil
}

func noneIfEmpty(s string) starlark.Value {
	if s == "" {
		return starlark.None
	}
	return starlark.String(s)
}
