package builtins

import (
	"go.starlark.net/starlark"
)

func init() {
	register(&Builtin{
		Name: "log",
		Doc: `log(msg, host=None)

Prints a message in the run's output, attributed to host if given.`,
		Fn: logFn,
	})
}

func logFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var msg string
	var hostV starlark.Value = starlark.None
	if err := starlark.UnpackArgs("log", args, kwargs, "msg", &msg, "host?", &hostV); err != nil {
		return nil, err
	}
	s, err := session(th, "log")
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
	s.Log(name, msg)
	return starlark.None, nil
}
