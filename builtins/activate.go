package builtins

import (
	"fmt"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

func init() {
	register(&Builtin{
		Name: "activate",
		Doc: `activate(host, closure, goal=ctx.goal)

Makes closure the host's system: for switch and boot it becomes the new
generation of the system profile, then the closure's
switch-to-configuration runs with goal (switch, boot, test or
dry-activate), with sudo when the target user is not root. Returns
struct(host, goal, previous, current). Only inside deploy(ctx).`,
		Fn: activateFn,
	})
}

func activateFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	var closure string
	var goal starlark.Value = starlark.None
	if err := starlark.UnpackArgs("activate", args, kwargs, "host", &hostV, "closure", &closure, "goal?", &goal); err != nil {
		return nil, err
	}
	h, err := deployableArg("activate", hostV)
	if err != nil {
		return nil, err
	}
	s, err := deploySession(th, "activate")
	if err != nil {
		return nil, err
	}
	g := s.Goal()
	if goal != starlark.None {
		gs, ok := starlark.AsString(goal)
		if !ok || !runtime.ValidGoal(gs) {
			return nil, fmt.Errorf("activate(): goal must be one of \"switch\", \"boot\", \"test\", \"dry-activate\", got %s", goal)
		}
		g = gs
	}
	st := s.Begin(th, &runtime.Step{
		Host: h.Name, Action: "activate", Goal: g, Closure: closure,
		Target: h.Target(), Sudo: h.TargetUser != "root",
	})
	start := time.Now()
	r, err := s.Executor().Activate(s.Context(), h, closure, g)
	if err == nil && !s.DryRun() {
		st.Result = &runtime.StepResult{Previous: r.Previous, Current: r.Current}
	}
	s.End(st, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	return result("activation", starlark.StringDict{
		"host":     h,
		"goal":     starlark.String(g),
		"previous": noneIfEmpty(r.Previous),
		"current":  noneIfEmpty(r.Current),
	}), nil
}

func noneIfEmpty(s string) starlark.Value {
	if s == "" {
		return starlark.None
	}
	return starlark.String(s)
}
