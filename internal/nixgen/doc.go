// Package nixgen generates the Nix code that evaluates fleet's hosts: the
// expression `fleet run` builds (Build) and the file `fleet export nix`
// writes for a flake to import (Export). Both come from one generator; what
// differs is where the code is evaluated, its policy:
//
//   - here (Build): nix-build and nix-instantiate evaluate a temporary file
//     on this machine, impurely. path() values are absolute paths; every
//     flake is fetched with builtins.getFlake, once per flake, with
//     --override-input's inputs put in its place; inventory() is written
//     out where it is used; each host is attribute h0, h1, ... (in host
//     order) of its system toplevel.
//   - file (Export): the importing flake evaluates the file from its store
//     copy, in pure mode. path() values are paths relative to the file
//     (./x, ../x, or ./. + "/x" when the name needs quoting), since the
//     checkout's absolute paths cannot be read there; hosts of the
//     importing flake use its self and inputs, hosts of other flakes
//     fetch them with builtins.getFlake (which needs --impure); each host
//     is attribute NAME of its nixosSystem result; inventory() is written
//     once, as the let binding fleetInventory.
//
// Under both policies a nixos_system() host is the same call,
//
//	let inputs = ...; self = ...; lib = inputs.nixpkgs.lib; in
//	inputs.nixpkgs.lib.nixosSystem {
//	  system = "x86_64-linux";
//	  specialArgs = { inherit inputs self; } // { ... };
//	  modules = [ ... ];
//	}
//
// so what fleet builds and what the flake evaluates are the same
// derivation (internal/export's tests check it with Nix). Inside modules
// and special_args, fleet's own values become: path() a path as above,
// nix_expr(code) the code itself (in parentheses, where inputs, self and
// lib are in scope), a host the attribute set { name, system, targetHost,
// targetUser, targetPort, allowLocal, deployable, tags, vars }, and
// inventory() the attribute set of every host by name. A host whose
// vars reach itself again (through inventory()) is an error here; the
// file's fleetInventory binding can refer to itself, so it is not there.
//
// A local flake directory (of a host or of --override-input, under both
// policies) is named as `nix build DIR` names it (internal/flakeref):
// "git+file:///REPO?dir=SUBDIR" in a git work tree, so that Nix copies
// only the files git tracks into the world-readable store (not the
// ignored key file next to fleet.star), and "path:DIR" elsewhere. A
// flake.nix git does not track is an error that says to `git add` it.
//
// Quoting: everything that comes from fleet.star (strings, attribute
// names, flake references, paths, the data inside modules and
// special_args) is written by internal/nixenc, which either encodes it
// exactly or fails; nix_expr() code is spliced in verbatim, by design.
// Host names and descriptions in comments have their line breaks
// replaced, so a comment cannot end early. Errors name the host and,
// through nixenc, the position of the offending value.
package nixgen
