package builtins

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const checkDoc = `check(host, cmd=None, http=None, systemd=None, retries=3, interval=2, timeout=10)

A health check of the host, retried: cmd (a list of words) must exit 0 on
the host; http (a URL, fetched from this machine, e.g.
"http://%s:8080/health" % h.target_host) must answer 2xx; systemd (a list
of units) must all be active on the host. Give exactly one. Up to
retries+1 attempts, interval seconds apart, each bounded by timeout
seconds. Returns struct(host, attempts); fails the step (a host failure)
when every attempt failed. Only inside deploy(ctx).`

func checkFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		hostV                starlark.Value
		cmdV, httpV, unitsV  starlark.Value = starlark.None, starlark.None, starlark.None
		retries                             = 3
		interval, timeoutArg starlark.Value = starlark.MakeInt(2), starlark.MakeInt(10)
	)
	if err := starlark.UnpackArgs("check", args, kwargs, "host", &hostV, "cmd?", &cmdV, "http?", &httpV,
		"systemd?", &unitsV, "retries?", &retries, "interval?", &interval, "timeout?", &timeoutArg); err != nil {
		return nil, err
	}
	h, err := deployableArg("check", hostV)
	if err != nil {
		return nil, err
	}
	spec := &runtime.CheckSpec{}
	n := 0
	if cmdV != starlark.None {
		n++
		if spec.Cmd, err = stringList("check", "cmd", cmdV); err != nil {
			return nil, err
		}
		if len(spec.Cmd) == 0 {
			return nil, fmt.Errorf("check(): cmd is empty")
		}
	}
	if httpV != starlark.None {
		n++
		u, ok := starlark.AsString(httpV)
		pu, perr := url.Parse(u)
		if !ok || perr != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("check(): http must be an http:// or https:// URL, got %s", httpV)
		}
		spec.HTTP = u
	}
	if unitsV != starlark.None {
		n++
		if spec.Systemd, err = stringList("check", "systemd", unitsV); err != nil {
			return nil, err
		}
		for _, u := range spec.Systemd {
			if u == "" || strings.HasPrefix(u, "-") || strings.ContainsAny(u, " /\n") {
				return nil, fmt.Errorf("check(): %q is not a systemd unit name", u)
			}
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("check(): give exactly one of cmd=, http= or systemd=")
	}
	if retries < 0 || retries > 1000 {
		return nil, fmt.Errorf("check(): retries must be between 0 and 1000, got %d", retries)
	}
	iv, ok1 := starlark.AsFloat(interval)
	to, ok2 := starlark.AsFloat(timeoutArg)
	if !ok1 || !ok2 || iv < 0 || to <= 0 {
		return nil, fmt.Errorf("check(): interval and timeout must be positive numbers of seconds")
	}
	spec.Timeout = seconds(to)
	r, err := runOf(th, "check")
	if err != nil {
		return nil, err
	}
	attempts := 0
	err = r.Step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionCheck, Check: spec.String(), Target: h.Target()},
		func(ctx context.Context, ex runtime.Executor) (*runtime.StepResult, error) {
			for {
				attempts++
				actx, cancel := context.WithTimeout(ctx, spec.Timeout)
				err := ex.Check(actx, h, spec)
				cancel()
				if err == nil {
					return nil, nil
				}
				if attempts > retries || r.Stopping() || ex.Sleep(r.SoftContext(), seconds(iv)) != nil {
					return nil, &runtime.HostError{Host: h.Name, Step: "check", Err: fmt.Errorf("%s: unhealthy after %d attempts: %w", spec, attempts, err)}
				}
			}
		})
	if err != nil {
		return nil, err
	}
	return result("check", starlark.StringDict{"host": h, "attempts": starlark.MakeInt(attempts)}), nil
}
