package builtins

import (
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

func init() {
	register(&Builtin{
		Name: "rollback",
		Doc: `rollback(host)

Switches the host back to its previous system generation: the system
profile steps back one generation, then that system's
switch-to-configuration switch runs. Returns struct(host, previous,
current). Only inside deploy(ctx).`,
		Fn: rollbackFn,
	})
}

func rollbackFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	if err := starlark.UnpackArgs("rollback", args, kwargs, "host", &hostV); err != nil {
		return nil, err
	}
	h, err := deployableArg("rollback", hostV)
	if err != nil {
		return nil, err
	}
	s, err := deploySession(th, "rollback")
	if err != nil {
		return nil, err
	}
	st := s.Begin(th, &runtime.Step{Host: h.Name, Action: "rollback", Target: h.Target(), Sudo: h.TargetUser != "root"})
	start := time.Now()
	r, err := s.Executor().Rollback(s.Context(), h)
	if err == nil && !s.DryRun() {
		st.Result = &runtime.StepResult{Previous: r.Previous, Current: r.Current}
	}
	s.End(st, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	return result("rollback", starlark.StringDict{
		"host":     h,
		"previous": noneIfEmpty(r.Previous),
		"current":  noneIfEmpty(r.Current),
	}), nil
}
