package builtins

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const nixosSystemDoc = `nixos_system(flake=".", modules=[], special_args={})

Describes a NixOS system that fleet evaluates as
inputs.nixpkgs.lib.nixosSystem { system; specialArgs; modules; } of the
given flake, with system taken from the host. flake is a directory
(relative to this file) holding a flake.nix, or a flake reference such as
"github:me/config". modules are path(...) values, nix_expr(...) values
(evaluated where the flake's inputs are in scope, e.g.
nix_expr("inputs.sops-nix.nixosModules.sops")) and dicts (inline
modules). special_args is a dict passed to every module; it may hold
hosts, lists, dicts, strings, numbers, booleans and None.`

func nixosSystemFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	flake := "."
	var modules *starlark.List
	var special *starlark.Dict
	if err := starlark.UnpackArgs("nixos_system", args, kwargs,
		"flake?", &flake, "modules?", &modules, "special_args?", &special); err != nil {
		return nil, err
	}
	r, err := runOf(th, "nixos_system")
	if err != nil {
		return nil, err
	}
	ref, err := flakeRef(r, th, flake)
	if err != nil {
		return nil, fmt.Errorf("nixos_system(): flake: %v", err)
	}
	mods := starlark.NewList(nil)
	if modules != nil {
		for i := 0; i < modules.Len(); i++ {
			switch m := modules.Index(i).(type) {
			case *runtime.Path, *runtime.NixExpr, *starlark.Dict:
				mods.Append(m)
			case starlark.String:
				return nil, fmt.Errorf("nixos_system(): modules[%d] is the string %s: wrap it as path(%s) for a file or nix_expr(%s) for Nix code", i, m, m, m)
			default:
				return nil, fmt.Errorf("nixos_system(): modules[%d] must be a path(...), nix_expr(...) or dict, got %s", i, m.Type())
			}
		}
	}
	mods.Freeze()
	args2 := starlark.NewDict(0)
	if special != nil {
		for _, kv := range special.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("nixos_system(): special_args keys must be strings, got %s", kv[0].Type())
			}
			args2.SetKey(k, kv[1])
		}
	}
	args2.Freeze()
	// Checked here, so that check and plan fail at this call, not the
	// deploy when it writes the Nix file.
	for _, v := range []struct {
		name string
		v    starlark.Value
	}{{"modules", mods}, {"special_args", args2}} {
		if err := nixenc.CheckShape(v.name, v.v, 0); err != nil {
			return nil, fmt.Errorf("nixos_system(): %v", err)
		}
	}
	return &runtime.NixosSystem{Flake: ref, FlakeShown: flake, Modules: mods, SpecialArgs: args2}, nil
}

// flakeRef resolves a flake as written in a script: a local directory
// (relative to the calling file) must hold a flake.nix; anything with a
// scheme ("github:...", "path:/...") is passed to Nix as it is.
func flakeRef(r *runtime.Run, th *starlark.Thread, flake string) (string, error) {
	if flake == "" || strings.ContainsAny(flake, " \t\n\x00") {
		return "", fmt.Errorf("%q is not a flake reference", flake)
	}
	if strings.Contains(flake, ":") && !strings.HasPrefix(flake, ".") && !strings.HasPrefix(flake, "/") {
		return flake, nil
	}
	dir := r.Resolve(th, flake)
	if _, err := os.Stat(filepath.Join(dir, "flake.nix")); err != nil {
		return "", fmt.Errorf("%q: no flake.nix in %s", flake, r.Display(dir))
	}
	return dir, nil
}
