package builtins

import (
	"context"
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const rollbackDoc = `rollback(host, to=0)

Switches the host back to what it ran before this run's first activation
(as recorded then): that system becomes the profile's newest generation and
is switched to, and the generation this run added is deleted, so that no
later rollback returns to it. Without such a record (nothing was activated
on the host in this run) the profile's previous generation is the target,
and fleet says so. With to = N the target is the system of the host's
generation N instead (fleet generations lists them; fleet rollback --to):
it becomes the profile's newest generation and is switched to. Returns
struct(host, previous, current). Only inside deploy(ctx).`

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
	r, err := deployRun(th, "rollback")
	if err != nil {
		return nil, err
	}
	var ar *runtime.ActivateResult
	err = r.Step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionRollback, Target: h.Target(), Sudo: h.Sudo(), Generation: to},
		func(ctx context.Context, ex runtime.Executor) (res *runtime.StepResult, err error) {
			log := func(msg string) { r.Log(h.Name, msg) }
			if to > 0 {
				ar, err = ex.RollbackTo(ctx, h, to, log)
			} else {
				ar, err = ex.Rollback(ctx, h, log)
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
