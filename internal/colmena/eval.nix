# fleet's evaluator of colmena hives (colmena 0.4 and 0.5, hive schema
# v0.5), written for fleet from colmena's documented behaviour. A node is
# a NixOS evaluated by its nixpkgs' nixos/lib/eval-config.nix (nixpkgs
# being meta.nixpkgs, or meta.nodeNixpkgs.NAME) from
#
#   fleet's modules: the `deployment' options under colmena's names, with
#     its types and defaults, the check that every key has one source, and
#     meta.nixpkgs' overlays and config put before the node's;
#   hive.defaults, then the node's module (or list of modules);
#
# with the special arguments colmena gives: name, nodes (every node,
# evaluated without option checks), then meta.specialArgs and
# meta.nodeSpecialArgs.NAME over them. eval-config.nix adds modulesPath,
# pkgs, lib, config and options as for any NixOS.
#
# Unlike colmena, fleet adds no key units or key-ownership activation
# script to the system: it uploads keys itself (secret()), with their
# owner and mode (docs/from-colmena.md).
#
# Called with one of
#   { flake = <a flake, with outputs>; }  its `colmenaHive' (a hive
#       colmena.lib.makeHive already evaluated: used as is) or its
#       `colmena' (evaluated here, pure: meta.nixpkgs must be an
#       initialized nixpkgs);
#   { hive = ./hive.nix; }  a non-flake hive (a set or a function of
#       { }), where meta.nixpkgs may also be a path or `import <nixpkgs>',
#       and defaults to <nixpkgs>.
# Returns what fleet builds from, in the shape of a v0.5 hive:
# { names; nodes; toplevel; deploymentConfig; } (nodes.NAME the evaluated
# NixOS, toplevel.NAME its system), and `fleet': for each node, its
# deployment settings as plain JSON data and its system, for fleet's
# reader (internal/colmena).
{ flake ? null, hive ? null }:
let
  inherit (builtins) attrNames elem filter isAttrs isFunction isList
    isPath isString length listToAttrs map mapAttrs typeOf;

  # A flake is evaluated purely: no <nixpkgs>, no nixpkgs to initialize.
  pure = hive == null;

  # A colmenaHive output, checked, or null.
  madeHive =
    if pure && flake ? colmenaHive then
      (if (flake.colmenaHive.__schema or null) == "v0.5" then flake.colmenaHive
       else throw "the colmenaHive output is not a hive of colmena's schema v0.5 (colmena.lib.makeHive of colmena 0.4 or 0.5)")
    else null;

  # The hive as written: a flake's `colmena', or hive.nix.
  written =
    if !pure then
      let h = if isPath hive || isString hive then import hive else hive; in
      if isFunction h || h ? __functor then h { }
      else if isAttrs h then h
      else throw "the hive must evaluate to an attribute set"
    else if flake ? colmena then flake.colmena
    else throw "the flake has no `colmena' or `colmenaHive' output (a colmena hive)";

  # `network' is the NixOps spelling of `meta'.
  hiveMeta =
    if written ? meta && written ? network then throw "only one of `network' and `meta' may be specified"
    else written.meta or written.network or { };

  # A nixpkgs as meta.nixpkgs may give it (`where' names the setting):
  # initialized (pkgs) anywhere; outside a flake also a path to nixpkgs,
  # or its function, applied here without overlays.
  initPkgs = where: v:
    let
      kind = if typeOf v == "set" && v ? outPath then "path" else typeOf v;
      impure = what: value:
        if pure then throw "${where}: ${what} is not accepted in a flake: use import nixpkgs { system = ...; }" else value;
    in
    if kind == "set" then
      (if v ? outputs then throw "${where}: an uninitialized nixpkgs input is not accepted: use import nixpkgs { system = ...; }" else v)
    else if kind == "path" then impure "a path to nixpkgs" (initPkgs where (import v))
    else if kind == "lambda" then impure "a nixpkgs function" (v { overlays = [ ]; })
    else throw "${where} must be a path to nixpkgs, a nixpkgs function or a nixpkgs attribute set";

  hivePkgs = initPkgs "meta.nixpkgs" (
    if (hiveMeta.nixpkgs or null) != null then hiveMeta.nixpkgs
    else if pure then throw "meta.nixpkgs must be specified in a flake"
    else <nixpkgs>);
  pkgsOf = name:
    let own = hiveMeta.nodeNixpkgs or { }; in
    if own ? ${name} then initPkgs "meta.nodeNixpkgs.${name}" own.${name} else hivePkgs;

  notNodes = [ "defaults" "network" "meta" ];
  names = filter (n: !elem n notNodes) (attrNames written);
  modulesOf = name: let m = written.${name}; in if isList m then m else [ m ];

  # The options colmena gives every node, with colmena's names, types and
  # defaults: an interface that hive modules set and read (a service's
  # key file is often config.deployment.keys.K.path).
  deploymentModule = { name, lib, ... }:
    let
      t = lib.types;
      opt = type: default: lib.mkOption { inherit type default; };
      keyOptions = { name, config, ... }: {
        options = {
          name = opt t.str name;
          text = opt (t.nullOr t.str) null;
          # Read where it is when uploaded: a string, not a store path.
          keyFile = opt (t.nullOr t.path) null // { apply = f: if f != null then toString f else null; };
          keyCommand = opt (t.nullOr (t.addCheck (t.listOf t.str) (argv: argv != [ ]))) null;
          destDir = opt t.path "/run/keys";
          path = opt t.path "${config.destDir}/${config.name}" // { internal = true; };
          user = opt t.str "root";
          group = opt t.str "root";
          permissions = opt t.str "0600";
          uploadAt = opt (t.enum [ "pre-activation" "post-activation" ]) "pre-activation";
        };
      };
    in
    {
      options.deployment = {
        targetHost = opt (t.nullOr t.str) name;
        targetPort = opt (t.nullOr t.ints.unsigned) null;
        targetUser = opt (t.nullOr t.str) "root";
        allowLocalDeployment = opt t.bool false;
        buildOnTarget = opt t.bool false;
        tags = opt (t.listOf t.str) [ ];
        keys = opt (t.attrsOf (t.submodule keyOptions)) { };
        replaceUnknownProfiles = opt t.bool true;
        privilegeEscalationCommand = opt (t.listOf t.str) [ "sudo" "-H" "--" ];
        sshOptions = opt (t.listOf t.str) [ ];
      };
    };

  # A key of deployment.keys with every field, its defaults filled in
  # where a module system left the submodule unapplied.
  withKeyDefaults = k: v: rec {
    name = v.name or k;
    destDir = v.destDir or "/run/keys";
    path = v.path or "${destDir}/${name}";
    user = v.user or "root";
    group = v.group or "root";
    permissions = v.permissions or "0600";
    uploadAt = v.uploadAt or "pre-activation";
    text = v.text or null;
    keyFile = if (v.keyFile or null) == null then null else toString v.keyFile;
    keyCommand = v.keyCommand or null;
  };
  keysOf = config: mapAttrs withKeyDefaults config.deployment.keys;

  # colmena refuses a key with no source, or with more than one.
  oneSourceModule = { config, name, ... }: {
    assertions = map
      (k: let key = (keysOf config).${k}; in {
        assertion = length (filter (s: s != null) [ key.text key.keyFile key.keyCommand ]) == 1;
        message = "node ${name}: deployment.keys.${k} needs exactly one source: text, keyFile or keyCommand";
      })
      (attrNames config.deployment.keys);
  };

  # The node's nixpkgs settings start from those its pkgs was made with;
  # nixpkgs before 22.11 had untyped config, which only a default merges.
  pkgsSettingsModule = pkgs: { lib, ... }: {
    nixpkgs = {
      overlays = lib.mkBefore pkgs.overlays;
      config = (if lib.versionAtLeast lib.version "22.11pre" then lib.mkBefore else lib.mkOptionDefault) pkgs.config;
    };
  };

  # Node `name' as colmena evaluates it; `extra' are more modules.
  nixosOf = extra: name:
    let pkgs = pkgsOf name; in
    import (pkgs.path + "/nixos/lib/eval-config.nix") {
      inherit (pkgs) system;
      modules = [ (pkgsSettingsModule pkgs) oneSourceModule deploymentModule (written.defaults or { }) ]
        ++ extra ++ modulesOf name;
      # Later sets win: the hive's own arguments over name and nodes.
      specialArgs = { inherit name; nodes = nodesArg; }
        // (hiveMeta.specialArgs or { })
        // ((hiveMeta.nodeSpecialArgs or { }).${name} or { });
    };
  forNodes = f: listToAttrs (map (name: { inherit name; value = f name; }) names);
  # What modules get as `nodes': without option checks, as colmena has it.
  nodesArg = forNodes (nixosOf [{ _module.check = false; }]);

  theHive =
    if madeHive != null then madeHive
    else rec {
      nodes = forNodes (nixosOf [ ]);
      toplevel = mapAttrs (_: n: n.config.system.build.toplevel) nodes;
      deploymentConfig = mapAttrs (_: n: n.config.deployment) nodes;
    };

  # What fleet reads of node `name': its deployment settings, whole, as
  # plain data, and its system.
  info = name: let
    node = theHive.nodes.${name};
    d = theHive.deploymentConfig.${name};
    system = node.pkgs.stdenv.hostPlatform.system or node.config.nixpkgs.hostPlatform.system or node.config.nixpkgs.system or null;
  in {
    inherit name;
    system = if isAttrs system then system.system else system;
    deployment = {
      inherit (d) targetHost targetPort targetUser allowLocalDeployment buildOnTarget tags;
      replaceUnknownProfiles = d.replaceUnknownProfiles or true;
      privilegeEscalationCommand = d.privilegeEscalationCommand or [ "sudo" "-H" "--" ];
      sshOptions = d.sshOptions or [ ];
      keys = map (k: let v = withKeyDefaults k d.keys.${k}; in {
        attr = k;
        inherit (v) name destDir user group permissions uploadAt keyFile keyCommand;
        inherit (v) text;
      }) (attrNames d.keys);
    };
  };
in
{
  names = attrNames theHive.nodes;
  inherit (theHive) nodes toplevel deploymentConfig;
  # fleet's reader (internal/colmena) evaluates fleet.read null, or
  # fleet.read [ NAME ] node by node when that fails.
  fleet.read = only: map info (if only == null then attrNames theHive.nodes else only);
  fleet.source = if flake != null then toString (flake.outPath or null) else null;
}
