package builtins

import (
	"context"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const pushDoc = `push(host, closure)

Copies closure and every path it depends on to the host over SSH,
sending only the paths the host lacks; a host with substitute = True
first fetches what its own substituters have. Returns
struct(host, paths, missing, bytes). Only inside deploy(ctx).`

func pushFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	var closure string
	if err := starlark.UnpackArgs("push", args, kwargs, "host", &hostV, "closure", &closure); err != nil {
		return nil, err
	}
	h, err := deployableArg("push", hostV)
	if err != nil {
		return nil, err
	}
	var pr *runtime.PushResult
	st := &runtime.Step{Host: h.Name, Action: runtime.ActionPush, Closure: closure, Target: h.Target(), Substitute: h.Substitute}
	progress := runtime.RunOf(th).Progress(st)
	err = step(th, st,
		func(ctx context.Context, ex runtime.Executor) (res *runtime.StepResult, err error) {
			if pr, err = ex.Push(ctx, h, closure, progress); err != nil {
				return nil, err
			}
			return &runtime.StepResult{Paths: pr.Paths, Missing: pr.Missing, Bytes: pr.Bytes}, nil
		})
	if err != nil {
		return nil, err
	}
	return result("push", starlark.StringDict{
		"host":    h,
		"paths":   starlark.MakeInt(pr.Paths),
		"missing": starlark.MakeInt(pr.Missing),
		"bytes":   starlark.MakeInt64(pr.Bytes),
	}), nil
}
