package builtins

import (
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

func init() {
	register(&Builtin{
		Name: "push",
		Doc: `push(host, closure)

Copies closure and every path it depends on to the host over SSH,
sending only the paths the host lacks. Returns
struct(host, paths, missing, bytes). Only inside deploy(ctx).`,
		Fn: pushFn,
	})
}

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
	s, err := deploySession(th, "push")
	if err != nil {
		return nil, err
	}
	st := s.Begin(th, &runtime.Step{Host: h.Name, Action: "push", Closure: closure, Target: h.Target()})
	start := time.Now()
	r, err := s.Executor().Push(s.StepContext(st), h, closure)
	if err == nil && !s.DryRun() {
		st.Result = &runtime.StepResult{Paths: r.Paths, Missing: r.Missing, Bytes: r.Bytes}
	}
	s.End(st, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	return result("push", starlark.StringDict{
		"host":    h,
		"paths":   starlark.MakeInt(r.Paths),
		"missing": starlark.MakeInt(r.Missing),
		"bytes":   starlark.MakeInt64(r.Bytes),
	}), nil
}
