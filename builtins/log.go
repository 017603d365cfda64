package builtins

import (
	"go.starlark.net/starlark"
)

const logDoc = `log(msg, host=None)

Prints a message in the run's output, attributed to host if given.`

func logFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var msg string
	var hostV starlark.Value = starlark.None
	if err := starlark.UnpackArgs("log", args, kwargs, "msg", &msg, "host?", &hostV); err != nil {
		return nil, err
	}
	r, err := runOf(th, "log")
	if err != nil {
		return nil, err
	}
	name := ""
	if hostV != starlark.None {
		h, err := hostArg("log", "host", hostV)
		if err != nil {
			return nil, err
		}
		name = h.Name
	}
	r.Log(name, msg)
	return starlark.None, nil
}
