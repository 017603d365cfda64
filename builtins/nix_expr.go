package builtins

import (
	"fmt"
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const nixExprDoc = `nix_expr(code)

A fragment of Nix code used verbatim where a module or value is expected,
for what Starlark cannot name: flake inputs and outputs. It is evaluated
with inputs (the flake's inputs), self (the flake) and lib (nixpkgs' lib)
in scope, e.g. nix_expr("inputs.sops-nix.nixosModules.sops").`

func nixExprFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var code string
	if err := starlark.UnpackPositionalArgs("nix_expr", args, kwargs, 1, &code); err != nil {
		return nil, err
	}
	if strings.TrimSpace(code) == "" {
		return nil, fmt.Errorf("nix_expr(): empty expression")
	}
	if strings.ContainsRune(code, 0) {
		return nil, fmt.Errorf("nix_expr(): expression contains a NUL byte")
	}
	return &runtime.NixExpr{Code: code}, nil
}
