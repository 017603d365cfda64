# Stand-in for flake-parts.lib.mkFlake: evaluates the part modules (with
# `inputs' and `self' as arguments) and returns their merged `flake'.
{ inputs }: module:
let
  self = inputs.self;
  eval = inputs.nixpkgs.lib.evalModules {
    modules = [ module ];
    specialArgs = { inherit inputs self; };
  };
in
eval.config.flake
