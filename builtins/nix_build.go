package builtins

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const nixBuildDoc = `nix_build(hosts)

Builds the system closure of every host in one batched Nix invocation
and returns a dict from host name to closure (a /nix/store path; a
placeholder in a plan). Only inside deploy(ctx).`

func nixBuildFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostsV starlark.Value
	if err := starlark.UnpackArgs("nix_build", args, kwargs, "hosts", &hostsV); err != nil {
		return nil, err
	}
	hosts, err := hostsArg("nix_build", hostsV)
	if err != nil {
		return nil, err
	}
	r, err := deployRun(th, "nix_build")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	steps := make([]*runtime.Step, 0, len(hosts))
	for _, h := range hosts {
		if seen[h.Name] {
			return nil, fmt.Errorf("nix_build(): host %q listed twice", h.Name)
		}
		seen[h.Name] = true
		steps = append(steps, &runtime.Step{Host: h.Name, Action: runtime.ActionBuild, System: h.System, Build: h.BuildDescription()})
	}
	var closures map[string]string
	err = r.Batch(th, steps, func(ctx context.Context, ex runtime.Executor) ([]error, error) {
		var err error
		closures, err = ex.Build(ctx, hosts)
		errs := make([]error, len(steps))
		for i, st := range steps {
			c, ok := closures[st.Host]
			switch {
			case ok:
				st.Closure = c
			case err != nil:
				errs[i] = errorFor(err, st.Host)
			default:
				errs[i] = fmt.Errorf("nix produced no closure for %s", st.Host)
			}
		}
		return errs, err
	})
	if err != nil {
		return nil, err
	}
	out := starlark.NewDict(len(hosts))
	for _, h := range hosts {
		c, ok := closures[h.Name]
		if !ok {
			return nil, &runtime.HostError{Host: h.Name, Step: "build", Err: fmt.Errorf("nix produced no closure")}
		}
		out.SetKey(starlark.String(h.Name), starlark.String(c))
	}
	out.Freeze()
	return out, nil
}

// errorFor picks, from the (possibly joined) error of a batch build, the
// part that concerns host: a build failure of several hosts shows each
// host its own cause.
func errorFor(err error, host string) error {
	var found error
	var walk func(error)
	walk = func(e error) {
		if found != nil || e == nil {
			return
		}
		if he, ok := e.(*runtime.HostError); ok {
			for _, h := range strings.Split(he.Host, ", ") {
				if h == host {
					found = he
					return
				}
			}
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	if found == nil {
		return err
	}
	return found
}
