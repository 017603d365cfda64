package builtins

import (
	"errors"
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const attemptDoc = `attempt(fn, *args, **kwargs)

Calls fn(*args, **kwargs) and catches its failure - Starlark has no
try/except. Returns struct(ok, value, error): value is fn's result when
ok, error the message when not. A failed step inside still counts as a
host failure of the run (fleet exits 1) unless the script recovers it;
an interrupt is never caught. Rollout strategies use it to roll a host
back when its health check fails:

    c = attempt(check, h, http = url)
    if not c.ok:
        rollback(h)`

func attemptFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("attempt(): want a function to call")
	}
	fn, ok := args[0].(starlark.Callable)
	if !ok {
		return nil, fmt.Errorf("attempt(): first argument must be callable, got %s", args[0].Type())
	}
	v, err := starlark.Call(th, fn, args[1:], kwargs)
	if err != nil {
		s := runtime.RunOf(th)
		var intr *runtime.Interrupted
		if errors.As(err, &intr) || (s != nil && s.Context().Err() != nil) {
			return nil, err
		}
		var ee *starlark.EvalError
		msg := err.Error()
		if errors.As(err, &ee) {
			msg = ee.Msg
		}
		return result("attempt", starlark.StringDict{"ok": starlark.False, "value": starlark.None, "error": starlark.String(msg)}), nil
	}
	return result("attempt", starlark.StringDict{"ok": starlark.True, "value": v, "error": starlark.None}), nil
}
