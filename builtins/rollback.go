package builtins

import (
	"context"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const rollbackDoc = `rollback(host)

Switches the host back to what it ran before this run's first activation
(as recorded then): that system becomes the profile's newest generation and
is switched to, and the generation this run added is deleted, so that no
later rollback returns to it. Without such a record (nothing was activated
on the host in this run) the profile's previous generation is the target,
and fleet says so. Returns struct(host, previous,
current). Only inside deploy(ctx).`

func rollbackFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	if err := starlark.UnpackArgs("rollback", args, kwargs, "host", &hostV); err != nil {
		return nil, err
	}
	h, err := deployableArg("rollback", hostV)
	if err != nil {
		return nil, err
	}
	r, err := deployRun(th, "rollback")
	if err != nil {
		return nil, err
	}
	var ar *runtime.ActivateResult
	err = r.Step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionRollback, Target: h.Target(), Sudo: h.Sudo()},
		func(ctx context.Context, ex runtime.Executor) (res *runtime.StepResult, err error) {
			ar, err = ex.Rollback(ctx, h, func(msg string) { r.Log(h.Name, msg) })
			return systemChange(ar, err)
		})
	if err != nil {
		return nil, err
	}
	return result("rollback", starlark.StringDict{
		"host":     h,
		"previous": noneIfEmpty(ar.Previous),
		"current":  noneIfEmpty(ar.Current),
	}), nil
}
