package builtins

import (
	"context"
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const rebootDoc = `reboot(host, timeout=600, if_needed=False)

Reboots the host (systemctl reboot, or reboot) and waits until it is
back: a fresh SSH connection works and the kernel's boot id changed.
Fails the step if that takes longer than timeout seconds. Typically
after activate(h, c, goal = "boot"). With if_needed = True it reboots
only if the new system's kernel, initrd or kernel modules differ from
the booted system's (readlink -f of each under /run/booted-system and
under the system profile, or /run/current-system without one), as
NixOS's switch-to-configuration compares them for its "reboot required"
hint; a host without /run/booted-system is rebooted. Returns
struct(host, rebooted, reason). Only inside deploy(ctx).`

func rebootFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	var timeout starlark.Value = starlark.MakeInt(600)
	ifNeeded := false
	if err := starlark.UnpackArgs("reboot", args, kwargs, "host", &hostV, "timeout?", &timeout, "if_needed?", &ifNeeded); err != nil {
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
	rr := &runtime.RebootResult{}
	err = step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionReboot, Target: h.Target(), Sudo: h.Sudo(), Seconds: secs, IfNeeded: ifNeeded},
		func(ctx context.Context, ex runtime.Executor) (*runtime.StepResult, error) {
			res, err := ex.Reboot(ctx, h, runtime.RebootOptions{Timeout: seconds(secs), IfNeeded: ifNeeded})
			if err != nil {
				return nil, err
			}
			rr = res
			return &runtime.StepResult{Rebooted: res.Rebooted, Reason: res.Reason}, nil
		})
	if err != nil {
		return nil, err
	}
	return result("reboot", starlark.StringDict{
		"host":     h,
		"rebooted": starlark.Bool(rr.Rebooted),
		"reason":   starlark.String(rr.Reason),
	}), nil
}
