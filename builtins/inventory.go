package builtins

import (
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const inventoryDoc = `inventory()

The whole inventory, for Nix: in special_args = {"hosts": inventory()}
every module gets an attribute set of all hosts by name (name, system,
targetHost, targetUser, targetPort, allowLocal, deployable, tags, vars),
as the seed's factory passes self.hosts. It is resolved when the systems
are built, so a factory can pass it before the later hosts are declared.`

func inventoryFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs("inventory", args, kwargs, 0); err != nil {
		return nil, err
	}
	r, err := runOf(th, "inventory")
	if err != nil {
		return nil, err
	}
	return runtime.NewInventory(r.Program()), nil
}
