package builtins

import (
	"context"
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const rebootDoc = `reboot(host, timeout=600)

Reboots the host (systemctl reboot, or reboot) and waits until it is
back: a fresh SSH connection works and the kernel's boot id changed.
Fails the step if that takes longer than timeout seconds. Typically
after activate(h, c, goal = "boot"). Only inside deploy(ctx).`

func rebootFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	var timeout starlark.Value = starlark.MakeInt(600)
	if err := starlark.UnpackArgs("reboot", args, kwargs, "host", &hostV, "timeout?", &timeout); err != nil {
		return nil, err
	}
	h, err := deployableArg("reboot", hostV)
	if err != nil {
		return nil, err
	}
	secs, ok := starlark.AsFloat(timeout)
	if !ok || secs <= 0 {
		return nil, fmt.Errorf("reboot(): timeout must be a positive number of seconds, got %s", timeout)
	}
	err = step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionReboot, Target: h.Target(), Sudo: h.Sudo(), Seconds: secs},
		func(ctx context.Context, ex runtime.Executor) (*runtime.StepResult, error) {
			return nil, ex.Reboot(ctx, h, seconds(secs))
		})
	if err != nil {
		return nil, err
	}
	return starlark.None, nil
}
