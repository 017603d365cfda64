package builtins

import (
	"fmt"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

func init() {
	register(&Builtin{
		Name: "nix_build",
		Doc: `nix_build(hosts)

Builds the system closure of every host in one batched Nix invocation
and returns a dict from host name to closure (a /nix/store path; a
placeholder in a plan). Only inside deploy(ctx).`,
		Fn: nixBuildFn,
	})
}

func nixBuildFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostsV starlark.Value
	if err := starlark.UnpackArgs("nix_build", args, kwargs, "hosts", &hostsV); err != nil {
		return nil, err
	}
	hosts, err := hostsArg("nix_build", hostsV)
	if err != nil {
		return nil, err
	}
	s, err := deploySession(th, "nix_build")
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
		steps = append(steps, &runtime.Step{Host: h.Name, Action: "build", System: h.System, Build: h.BuildDescription()})
	}
	out := starlark.NewDict(len(hosts))
	if len(hosts) == 0 {
		out.Freeze()
		return out, nil
	}
	s.BeginBatch(th, steps)
	start := time.Now()
	closures, err := s.Executor().Build(s.Context(), hosts)
	for _, st := range steps {
		c, ok := closures[st.Host]
		var stepErr error
		switch {
		case ok:
			st.Closure = c
		case err != nil:
			stepErr = errorFor(err, st.Host)
		default:
			stepErr = fmt.Errorf("nix produced no closure for %s", st.Host)
		}
		s.End(st, stepErr, time.Since(start))
	}
	if err != nil {
		return nil, err
	}
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
