package builtins

import (
	"fmt"
	"os"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const pathDoc = `path(p)

A local file or directory, relative to the file that calls path() (not
to the working directory), e.g. path("./hosts/" + name). It must exist.
In Nix it becomes a path, so as a module it is imported like ./hosts/envy
in a flake.`

func pathFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p string
	if err := starlark.UnpackPositionalArgs("path", args, kwargs, 1, &p); err != nil {
		return nil, err
	}
	r, err := runOf(th, "path")
	if err != nil {
		return nil, err
	}
	if p == "" {
		return nil, fmt.Errorf("path(): empty path")
	}
	abs := r.Resolve(th, p)
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("path(%q): %s does not exist", p, r.Display(abs))
	}
	return &runtime.Path{Abs: abs, Written: p}, nil
}
