# Reads a colmena hive for `fleet init --from-colmena`: the node names and
# each node's deployment.* settings, as JSON, without colmena.
#
# Called with { flake; only; depth; }: flake is a flake reference for
# builtins.getFlake, only null (every node) or a list of node names, depth
# how deep to follow a node's imports.
#
# colmena evaluates every node with the NixOS module system and its own
# deployment options. This file does not have colmena's options, so it
# reads the definitions: the node's module (an attribute set, or a
# function of { name, nodes, pkgs, lib, config, ... } - config is not
# available here and throws), the hive's `defaults` module, and their
# imports, and merges deployment.* as the module system would (mkDefault,
# mkForce, mkIf, mkMerge; lists concatenated). A setting that cannot be
# evaluated this way is reported as { error = true; }.
{ flake, only ? null, depth ? 3 }:
let
  inherit (builtins) attrNames concatMap filter foldl' getFlake isAttrs
    isFunction isList isPath isString map tryEval deepSeq;

  f = getFlake flake;
  hive = f.colmena or (throw "the flake has no `colmena' output (a colmena hive)");
  meta = hive.meta or { };
  configs = f.nixosConfigurations or { };
  names = filter (n: n != "meta" && n != "defaults") (attrNames hive);

  toPkgs = p:
    if isFunction p then p { }
    else if isPath p || isString p then import p { }
    else p;
  pkgsOf = name:
    toPkgs (meta.nodeNixpkgs.${name} or meta.nixpkgs or f.inputs.nixpkgs.legacyPackages.${builtins.currentSystem} or (throw "fleet: no meta.nixpkgs"));
  libOf = name: (pkgsOf name).lib or f.inputs.nixpkgs.lib or (throw "fleet: no nixpkgs lib");

  # colmena's module arguments; what this reader cannot provide throws
  # (which tryEval catches) when used.
  argsOf = name:
    (meta.specialArgs or { }) // (meta.nodeSpecialArgs.${name} or { }) // {
      inherit name;
      nodes = builtins.mapAttrs (n: _: configs.${n} or (throw "fleet: nodes.${n} is not available")) (builtins.listToAttrs (map (n: { name = n; value = null; }) names));
      pkgs = pkgsOf name;
      lib = libOf name;
      config = throw "fleet: config is not available when reading deployment settings";
      options = throw "fleet: options are not available when reading deployment settings";
      modulesPath = throw "fleet: modulesPath is not available when reading deployment settings";
    };

  load = m: if isPath m || isString m then import m else m;
  apply = name: m: let m' = load m; in if isFunction m' then m' (argsOf name) else m';

  # The deployment definitions of module m and of its imports.
  collect = name: d: m:
    let
      r = apply name m;
      own = if r ? deployment then [ r.deployment ]
        else if (r.config or { }) ? deployment then [ r.config.deployment ]
        else [ ];
      imports = if d > 0 && isList (r.imports or null) then concatMap (collect name (d - 1)) r.imports else [ ];
    in
    own ++ imports;

  typeOf = v: if isAttrs v then v._type or null else null;

  # A definition as (priority, value) pairs, wrappers removed.
  defs = prio: v:
    let t = typeOf v; in
    if t == "override" then defs v.priority v.content
    else if t == "if" then (if v.condition then defs prio v.content else [ ])
    else if t == "order" then defs prio v.content
    else if t == "merge" then concatMap (defs prio) v.contents
    else [{ inherit prio; value = v; }];

  # deployment attribute sets, wrappers removed.
  sets = v:
    let t = typeOf v; in
    if t == "if" then (if v.condition then sets v.content else [ ])
    else if t == "merge" then concatMap sets v.contents
    else if t == "override" || t == "order" then sets v.content
    else [ v ];

  # The merged definition of deployment.<key>: { set; value; }, value
  # default when no module sets it. mode is "scalar" (the definition of
  # highest priority), "list" (concatenated) or "attrs" (merged).
  pick = mode: key: default: deployments:
    let
      all = concatMap (d: if isAttrs d && d ? ${key} then defs 100 d.${key} else [ ]) (concatMap sets deployments);
      best = foldl' (m: x: if x.prio < m then x.prio else m) 10000 all;
      chosen = map (x: x.value) (filter (x: x.prio == best) all);
    in
    if all == [ ] then { set = false; value = default; }
    else {
      set = true;
      value =
        if mode == "list" then concatMap (v: if isList v then v else [ v ]) chosen
        else if mode == "attrs" then foldl' (a: b: a // b) { } chosen
        else builtins.head chosen;
    };

  # A path of the flake's store copy as a path relative to the flake.
  relative = p:
    let s = toString p; o = toString f.outPath + "/"; n = builtins.stringLength o; in
    if builtins.substring 0 n s == o then "./" + builtins.substring n (-1) s else s;

  safe = v: let r = tryEval (deepSeq v v); in if r.success then { value = r.value; } else { error = true; };

  systemOf = name:
    safe (
      if configs ? ${name} then
        configs.${name}.pkgs.stdenv.hostPlatform.system or configs.${name}.config.nixpkgs.hostPlatform.system or configs.${name}.config.nixpkgs.system or null
      else
        (pkgsOf name).stdenv.hostPlatform.system or (pkgsOf name).system or null
    );

  node = name:
    let
      mods = (if hive ? defaults then [ hive.defaults ] else [ ]) ++ [ hive.${name} ];
      ds = concatMap (collect name depth) mods;
      get = mode: key: default:
        let p = pick mode key default ds; r = tryEval (deepSeq p p); in
        if r.success then r.value else { error = true; };
    in
    {
      inherit name;
      hasConfig = configs ? ${name};
      system = systemOf name;
      targetHost = get "scalar" "targetHost" name;
      targetUser = get "scalar" "targetUser" "root";
      targetPort = get "scalar" "targetPort" null;
      allowLocalDeployment = get "scalar" "allowLocalDeployment" false;
      buildOnTarget = get "scalar" "buildOnTarget" false;
      tags = get "list" "tags" [ ];
      keys = safe (
        let ks = (pick "attrs" "keys" { } ds).value; in
        map (k: let v = ks.${k}; in {
          name = v.name or k;
          destDir = v.destDir or "/run/keys";
          user = v.user or "root";
          group = v.group or "root";
          permissions = v.permissions or "0600";
          uploadAt = v.uploadAt or "pre-activation";
          source =
            if (v.keyCommand or null) != null then { keyCommand = v.keyCommand; }
            else if (v.keyFile or null) != null then { keyFile = relative v.keyFile; }
            else if (v.text or null) != null then { text = true; }
            else { };
        }) (attrNames ks)
      );
    };
in
{
  nodes = map node (if only == null then names else only);
  inherit names;
  configs = attrNames configs;
}
