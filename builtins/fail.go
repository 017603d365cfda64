package builtins

import (
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const failDoc = `fail(*args, sep=" ")

Stops the run with a message, like Starlark's fail. Inside deploy(ctx) it
is the rollout's own decision to stop (a spent failure budget, a check
that failed) and fleet exits 1; while loading it is an error in the
script and fleet exits 2.`

func failFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	sep := " "
	if err := starlark.UnpackArgs("fail", nil, kwargs, "sep?", &sep); err != nil {
		return nil, err
	}
	parts := make([]string, len(args))
	for i, a := range args {
		if s, ok := starlark.AsString(a); ok {
			parts[i] = s
		} else {
			parts[i] = a.String()
		}
	}
	msg := strings.Join(parts, sep)
	if s := runtime.RunOf(th); s != nil && s.Deploying() {
		return nil, &runtime.Stop{Msg: msg}
	}
	return nil, &failError{msg}
}

type failError struct{ msg string }

func (e *failError) Error() string { return e.msg }
