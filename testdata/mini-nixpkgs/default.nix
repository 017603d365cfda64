# `import mini-nixpkgs { }` gives pkgs, as `import <nixpkgs> { }` does.
{ system ? builtins.currentSystem, overlays ? [ ], config ? { } }:
import ./pkgs.nix { lib = import ./lib.nix; inherit system; }
