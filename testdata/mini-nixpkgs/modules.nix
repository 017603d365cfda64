# A tiny NixOS-style module system (no option checking; of types only
# submodules are applied).
#
#   evalModules { modules, specialArgs ? {}, args ? {} }
#     -> { config, definedConfig, jsonConfig, modules }
#
# Modules are attrsets, functions ({ config, lib, pkgs, ... } plus every
# specialArgs attribute) or paths/strings (files, or directories with a
# default.nix). A module is either `{ imports, options, config }` or a plain
# attrset of config (+ imports). `imports` are followed recursively; modules
# imported by path are only included once. `options` declarations are only
# used for their `default` (which becomes an mkOptionDefault definition),
# their `apply` and submodule types (applied to the merged value).
#
# Merging, done per option path with all definitions of that path:
#   * mkMerge is flattened, mkIf / mkOverride / mkOrder are pushed down into
#     attrsets, so attribute NAMES never depend on conditions (this is what
#     lets `config = mkIf config.foo.enable { ... }` work lazily);
#   * if all definitions are attrsets they are merged recursively;
#   * otherwise this is a leaf: definitions whose mkIf conditions are false
#     are dropped, then only the highest priority (lowest number: mkForce 50,
#     plain 100, mkDefault 1000, option default 1500) survives; lists are
#     concatenated (sorted by mkOrder, stable), equal scalars are fine, and
#     different scalars are an error naming the option path.
#   * a leaf whose definitions were all dropped is "used but not defined":
#     reading it throws; `definedConfig`/`jsonConfig` simply omit it.
{ lib }:
{ modules, specialArgs ? { }, args ? { } }:
let
  inherit (builtins)
    all
    any
    attrNames
    concatMap
    concatStringsSep
    filter
    foldl'
    head
    isAttrs
    isBool
    isFunction
    isList
    isPath
    isString
    length
    mapAttrs
    typeOf
    zipAttrsWith
    ;

  # What every module function is called with. `config` is the fixed point.
  moduleArgs = { inherit lib; options = { }; } // args // specialArgs // { inherit config; };

  # --- 1. collect modules -------------------------------------------------------
  specialKeys = [ "_class" "_file" "key" "disabledModules" "imports" "options" "config" "meta" "freeformType" ];

  loadModule = parentFile: key: m:
    let
      isPathLike = isPath m || isString m;
      file = if isPathLike then toString m else if parentFile == null then key else parentFile;
      raw = if isPathLike then import m else m;
      value =
        if isFunction raw || (isAttrs raw && raw ? __functor) then raw moduleArgs
        else if isAttrs raw then raw
        else throw "module ${file} (${key}) is a ${typeOf raw}, expected an attrset, a function or a path";
      file' = value._file or file;
      key' = if isPathLike then toString m else value.key or key;
      structured = value ? config || value ? options;
    in
    {
      key = key';
      file = file';
      imports = lib.imap0 (i: loadModule file' "${key'}:imports[${toString i}]") (value.imports or [ ]);
      config = if structured then value.config or { } else removeAttrs value specialKeys;
      options = value.options or { };
    };

  allModules = builtins.genericClosure {
    startSet = lib.imap0 (i: loadModule null "modules[${toString i}]") modules;
    operator = m: m.imports;
  };

  # Option declarations -> config-shaped attrset of mkOptionDefault values.
  optionDefaults = opts:
    lib.listToAttrs (concatMap
      (n:
        let o = opts.${n}; in
        if isAttrs o && (o._type or null) == "option" then
          lib.optional (o ? default) (lib.nameValuePair n (lib.mkOptionDefault o.default))
        else if isPlainAttrs o then [ (lib.nameValuePair n (optionDefaults o)) ]
        else [ ])
      (attrNames opts));

  # --- 2. definitions -------------------------------------------------------------
  # def = { file, value, conds (list of { condition }), prio, order }
  defsOf = m:
    map (value: { file = m.file; inherit value; conds = [ ]; prio = null; order = null; })
      [ m.config (optionDefaults m.options) ];

  # Flatten mkMerge and unwrap mkIf/mkOverride/mkOrder (outermost priority wins,
  # like nixpkgs). Never evaluates a condition.
  normalize = def:
    let
      v = def.value;
      t = if isAttrs v then v._type or null else null;
    in
    if t == "merge" then concatMap (c: normalize (def // { value = c; })) v.contents
    else if t == "if" then normalize (def // { value = v.content; conds = def.conds ++ [ { inherit (v) condition; } ]; })
    else if t == "override" then normalize (def // { value = v.content; prio = if def.prio == null then v.priority else def.prio; })
    else if t == "order" then normalize (def // { value = v.content; order = if def.order == null then v.priority else def.order; })
    else [ def ];

  # Attrsets that are merged recursively (not derivations, sources, functors,
  # option declarations or other typed values).
  isPlainAttrs = v: isAttrs v && !(v ? _type || v ? outPath || v ? __functor);

  prioOf = d: if d.prio == null then 100 else d.prio;
  orderOf = d: if d.order == null then 1000 else d.order;
  showPath = path: if path == [ ] then "<root>" else concatStringsSep "." path;
  showValue = v:
    if v == null || isBool v || isString v || builtins.isInt v || builtins.isFloat v then builtins.toJSON v
    else if isPath v then toString v
    else if lib.isDerivation v then "<derivation ${v.name}>"
    else "<${typeOf v}>";

  # --- 3. merge -------------------------------------------------------------------
  # node = { kind = "attrs"; children } | { kind = "value"; value } | { kind = "undefined"; path }
  mergeNode = path: defs:
    if defs != [ ] && all (d: isPlainAttrs d.value) defs then attrsNode path defs else leafNode path defs;

  attrsNode = path: defs: {
    kind = "attrs";
    children = zipAttrsWith
      (n: ds: mergeNode (path ++ [ n ]) (concatMap normalize ds))
      (map (d: mapAttrs (_: v: d // { value = v; }) d.value) defs);
  };

  checkCond = path: c:
    if isBool c.condition then c.condition
    else throw "mkIf condition for option `${showPath path}' is a ${typeOf c.condition}, not a boolean";

  leafNode = path: defs:
    let
      active = filter (d: all (checkCond path) d.conds) defs;
      prio = foldl' (p: d: if prioOf d < p then prioOf d else p) 99999 active;
      winners = filter (d: prioOf d == prio) active;
      first = head winners;
      describe = lib.concatMapStrings (d: "\n       - In `${d.file}': ${showValue d.value}") winners;
    in
    if winners == [ ] then { kind = "undefined"; inherit path; }
    else if all (d: isPlainAttrs d.value) winners then attrsNode path winners
    else if all (d: isList d.value) winners then {
      kind = "value";
      value = concatMap (d: d.value) (builtins.sort (a: b: orderOf a < orderOf b) winners);
    }
    else if any (d: isList d.value || isPlainAttrs d.value) winners then {
      kind = "value";
      value = throw "The option `${showPath path}' has definitions of different types:${describe}";
    }
    else {
      kind = "value";
      value =
        if length winners == 1 || all (d: d.value == first.value) (builtins.tail winners) then first.value
        else throw "The option `${showPath path}' has conflicting definition values:${describe}";
    };

  root = attrsNode [ ] (concatMap normalize (concatMap checkedDefs allModules));
  checkedDefs = m: map
    (d: if isAttrs d.value then d else throw "the config of module ${m.file} is a ${typeOf d.value}, expected an attrset")
    (defsOf m);

  # --- 4. views of the result -----------------------------------------------------
  toValue = node:
    if node.kind == "attrs" then mapAttrs (_: toValue) node.children
    else if node.kind == "value" then node.value
    else throw "The option `${showPath node.path}' is used but not defined.";

  # Like toValue, but leaves that are not defined are left out (as are
  # attrsets that only contained such leaves).
  prune = node:
    if node.kind == "attrs" then
      let kept = lib.filterAttrs (_: k: k.keep) (mapAttrs (_: prune) node.children);
      in { keep = attrNames node.children == [ ] || kept != { }; value = mapAttrs (_: k: k.value) kept; }
    else { keep = node.kind == "value"; value = node.value or null; };

  # Make a value safe for builtins.toJSON: functions are dropped, derivations
  # become "<derivation NAME>" (no store reference), paths become strings.
  isFn = v: isFunction v || (isAttrs v && v ? __functor);
  jsonable = v:
    if lib.isDerivation v then "<derivation ${v.name}>"
    else if isPath v then toString v
    else if isList v then map jsonable (filter (x: !isFn x) v)
    else if isAttrs v && v ? outPath then toString v
    else if isAttrs v && v ? _type then "<${v._type}>"
    else if isAttrs v then mapAttrs (_: jsonable) (lib.filterAttrs (_: x: !isFn x) v)
    else v;

  # Option types and `apply': a declared option of type submodule (or
  # attrsOf / listOf / nullOr of one) has its value evaluated as a module
  # with the submodule's options, `name' being its attribute name; an
  # option's `apply' function is applied to its value. Nothing else of a
  # type is checked.
  applyType = type: name: v:
    let n = type.name or null; in
    if n == "submodule" then
      (lib.evalModules { modules = [ type.module v ]; specialArgs = { inherit name; }; }).config
    else if n == "attrsOf" then mapAttrs (k: applyType type.elemType k) v
    else if n == "listOf" then map (applyType type.elemType name) v
    else if n == "nullOr" then (if v == null then null else applyType type.elemType name v)
    else v;
  hasSubmodule = type:
    let n = type.name or null; in
    n == "submodule" || ((n == "attrsOf" || n == "listOf" || n == "nullOr") && hasSubmodule type.elemType);
  # [ { path; f; } ] for the declared options that need it.
  appliers = path: opts: concatMap
    (n:
      let o = opts.${n}; p = path ++ [ n ]; in
      if isAttrs o && (o._type or null) == "option" then
        lib.optional (o ? apply || hasSubmodule (o.type or { })) {
          path = p;
          f = v: (o.apply or lib.id) (applyType (o.type or { }) (lib.last p) v);
        }
      else if isPlainAttrs o then appliers p o
      else [ ])
    (attrNames opts);
  updateAt = path: f: c:
    let n = head path; in
    if !(isAttrs c && c ? ${n}) then c
    else c // { ${n} = if length path == 1 then f c.${n} else updateAt (builtins.tail path) f c.${n}; };

  config = foldl' (c: a: updateAt a.path a.f c) (toValue root) (concatMap (m: appliers [ ] m.options) allModules);
  definedConfig = (prune root).value;
in
{
  inherit config definedConfig;
  # Without assertions and warnings, which NixOS checks but does not put
  # in the system (their messages are only evaluated when they fail).
  jsonConfig = jsonable (removeAttrs definedConfig [ "_module" "assertions" "warnings" ]);
  modules = map (m: { inherit (m) key file; }) allModules;
}
