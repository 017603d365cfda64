package builtins

import (
	"context"
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const rollbackDoc = `rollback(host, to=0)

Switches the host back to its previous system generation: the system
profile steps back one generation, then that system's
switch-to-configuration switch runs. With to = N it switches to
generation N instead (nix-env --switch-generation N; fleet generations
lists them). Returns struct(host, previous, current). Only inside
deploy(ctx).`

func rollbackFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	to := 0
	if err := starlark.UnpackArgs("rollback", args, kwargs, "host", &hostV, "to?", &to); err != nil {
		return nil, err
	}
	if to < 0 {
		return nil, fmt.Errorf("rollback(): to must be a generation number (1 or more), or 0 for the previous one, got %d", to)
	}
	h, err := deployableArg("rollback", hostV)
	if err != nil {
		return nil, err
	}
	var ar *runtime.ActivateResult
	err = step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionRollback, Target: h.Target(), Sudo: h.Sudo(), Generation: to},
		func(ctx context.Context, ex runtime.Executor) (res *runtime.StepResult, err error) {
			if to > 0 {
				ar, err = ex.RollbackTo(ctx, h, to)
			} else {
				ar, err = ex.Rollback(ctx, h)
			}
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
