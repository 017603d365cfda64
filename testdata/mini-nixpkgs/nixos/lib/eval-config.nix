# Stand-in for nixpkgs' nixos/lib/eval-config.nix (what colmena evaluates
# a node with: `import (pkgs.path + "/nixos/lib/eval-config.nix")`).
{ system ? builtins.currentSystem, modules, specialArgs ? { }, ... }:
(import ../../lib.nix).nixosSystem { inherit system modules specialArgs; }
