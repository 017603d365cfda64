# lib.nixosSystem { system, specialArgs ? {}, modules, extraModules ? [] }
#   -> { config, pkgs, lib, options, definedConfig, jsonConfig, extendModules }
#
# config.system.build.toplevel is the system closure (see ./toplevel.nix).
{ lib }:
{ system ? null
, specialArgs ? { }
, modules
, extraModules ? [ ]
, pkgs ? null
, ...
}@callArgs:
let
  eval = lib.evalModules {
    # Internal modules last, so that user modules are modules[0], modules[1], …
    # in error messages.
    modules = modules ++ extraModules ++ [ defaultsModule buildModule ];
    inherit specialArgs;
    args = {
      pkgs = thePkgs;
      modulesPath = ./modules;
    };
  };
  cfg = eval.definedConfig;

  # `system` may also come from nixpkgs.hostPlatform, as in real NixOS.
  hostSystem =
    if system != null then system
    else
      let p = cfg.nixpkgs.hostPlatform or cfg.nixpkgs.system or
        (throw "nixosSystem: no `system' argument and nixpkgs.hostPlatform is not set");
      in if builtins.isAttrs p then p.system else p;

  thePkgs = if pkgs != null then pkgs else import ./pkgs.nix { inherit lib; system = hostSystem; };

  # Defaults (all overridable by plain definitions).
  defaultsModule = { config, ... }: {
    _file = toString ./nixos.nix + "#defaults";
    networking.hostName = lib.mkDefault (specialArgs.name or "nixos");
    system.nixos.version = lib.mkDefault (specialArgs.version or "25.11");
    environment.etc.hostname.text = lib.mkDefault (config.networking.hostName + "\n");
    environment.systemPackages = [ ];
    # One mkDefault around the whole set: every leaf gets priority 1000, and
    # e.g. `fleet.test.payload = null;` simply wins over the default set.
    fleet.test = lib.mkDefault {
      failActivation = false;
      activationDelay = 0;
      unitsFailed = false;
      postActivation = "";
      payload = { count = 0; sizeKB = 1024; };
    };
  };

  build = import ./toplevel.nix {
    inherit lib;
    system = hostSystem;
    config = cfg;
    configJSON = builtins.toJSON eval.jsonConfig;
  };
  buildModule = {
    _file = toString ./nixos.nix + "#build";
    system.build = { inherit (build) toplevel etc; };
  };
in
{
  inherit (eval) config definedConfig jsonConfig;
  inherit lib;
  pkgs = thePkgs;
  options = { };
  # Same idea as nixpkgs: evaluate again with more modules / specialArgs.
  extendModules = { modules ? [ ], specialArgs ? { } }:
    lib.nixosSystem (callArgs // {
      modules = callArgs.modules ++ modules;
      specialArgs = (callArgs.specialArgs or { }) // specialArgs;
    });
}
