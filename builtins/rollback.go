package builtins

import (
	"context"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const rollbackDoc = `rollback(host)

Switches the host back to its previous system generation: the system
profile steps back one generation, then that system's
switch-to-configuration switch runs. Returns struct(host, previous,
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
	var ar *runtime.ActivateResult
	err = step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionRollback, Target: h.Target(), Sudo: h.Sudo()},
		func(ctx context.Context, ex runtime.Executor) (res *runtime.StepResult, err error) {
			ar, err = ex.Rollback(ctx, h)
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
