# The `lib` of mini-nixpkgs: a small subset of nixpkgs' lib, enough for the
# host modules used in fleet's tests. Everything is built from builtins only.
let
  inherit (builtins)
    attrNames
    concatMap
    concatStringsSep
    elem
    filter
    foldl'
    genList
    head
    isAttrs
    length
    listToAttrs
    mapAttrs
    replaceStrings
    ;

  lib = builtins // rec {
    # --- module system --------------------------------------------------------
    # Property wrappers understood by ./modules.nix (same shapes as nixpkgs).
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkOptionDefault = mkOverride 1500; # priority of an option's `default`
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;
    mkVMOverride = mkOverride 10;
    mkOrder = priority: content: { _type = "order"; inherit priority content; };
    mkBefore = mkOrder 500;
    mkAfter = mkOrder 1500;

    # Option declarations are accepted; only `default` is used (it becomes a
    # definition with mkOptionDefault priority). Types are not checked.
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: mkOption {
      default = false;
      description = "Whether to enable ${name}.";
    };
    mkPackageOption = pkgs: name: extra: mkOption ({ default = pkgs.${name} or null; } // extra);
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    types =
      let
        t = name: { _type = "optionType"; inherit name; };
        t1 = name: _: t name;
        t2 = name: _: _: t name;
      in
      {
        anything = t "anything";
        attrs = t "attrs";
        bool = t "bool";
        int = t "int";
        ints = { positive = t "int"; unsigned = t "int"; };
        float = t "float";
        lines = t "lines";
        package = t "package";
        path = t "path";
        port = t "port";
        raw = t "raw";
        str = t "str";
        unspecified = t "unspecified";
        # Types that wrap others keep them: a submodule's option defaults
        # are applied to each value (see ./modules.nix).
        attrsOf = elemType: t "attrsOf" // { inherit elemType; };
        either = t2 "either";
        enum = t1 "enum";
        listOf = elemType: t "listOf" // { inherit elemType; };
        nullOr = elemType: t "nullOr" // { inherit elemType; };
        oneOf = t1 "oneOf";
        submodule = module: t "submodule" // { inherit module; };
        addCheck = type: _: type;
      };

    # --- lists ----------------------------------------------------------------
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    flatten = x: if builtins.isList x then concatMap flatten x else [ x ];
    range = first: last: if first > last then [ ] else genList (i: first + i) (last - first + 1);
    imap0 = f: list: genList (i: f i (builtins.elemAt list i)) (length list);
    imap1 = f: list: genList (i: f (i + 1) (builtins.elemAt list i)) (length list);
    last = list: builtins.elemAt list (length list - 1);
    unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
    count = pred: list: length (filter pred list);
    forEach = xs: f: map f xs;

    # --- attrsets -------------------------------------------------------------
    optionalAttrs = cond: as: if cond then as else { };
    nameValuePair = name: value: { inherit name value; };
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    filterAttrs = pred: set:
      listToAttrs (concatMap (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ]) (attrNames set));
    mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
    mapAttrs' = f: set: listToAttrs (mapAttrsToList f set);
    attrByPath = path: default: set:
      if path == [ ] then set
      else if isAttrs set && set ? ${head path} then attrByPath (builtins.tail path) default set.${head path}
      else default;
    hasAttrByPath = path: set:
      path == [ ] || (isAttrs set && set ? ${head path} && hasAttrByPath (builtins.tail path) set.${head path});
    getAttrFromPath = path: set:
      foldl' (s: n: s.${n} or (throw "cannot find attribute `${concatStringsSep "." path}'")) set path;
    setAttrByPath = path: value:
      if path == [ ] then value else { ${head path} = setAttrByPath (builtins.tail path) value; };
    # Recursively merge two attrsets; the right side wins for non-attrset values.
    recursiveUpdate = lhs: rhs:
      lhs // mapAttrs
        (n: v: if isAttrs v && isAttrs (lhs.${n} or null) && !(isDerivation v) then recursiveUpdate lhs.${n} v else v)
        rhs;
    isDerivation = x: isAttrs x && (x.type or null) == "derivation";

    # --- strings --------------------------------------------------------------
    optionalString = cond: s: if cond then s else "";
    concatMapStringsSep = sep: f: list: concatStringsSep sep (map f list);
    concatMapStrings = f: list: concatStringsSep "" (map f list);
    concatLines = list: concatMapStrings (s: s + "\n") list;
    hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
    hasSuffix = suffix: s:
      let ls = builtins.stringLength s; lx = builtins.stringLength suffix;
      in ls >= lx && builtins.substring (ls - lx) lx s == suffix;
    splitString = sep: s: filter builtins.isString (builtins.split (escapeRegex sep) s);
    escapeRegex = replaceStrings
      [ "\\" "[" "]" "(" ")" "{" "}" "." "*" "+" "?" "^" "$" "|" ]
      [ "\\\\" "\\[" "\\]" "\\(" "\\)" "\\{" "\\}" "\\." "\\*" "\\+" "\\?" "\\^" "\\$" "\\|" ];
    escapeShellArg = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
    fileContents = file: lib.removeSuffix "\n" (builtins.readFile file);
    removePrefix = prefix: s:
      if hasPrefix prefix s
      then builtins.substring (builtins.stringLength prefix) (-1) s
      else s;
    removeSuffix = suffix: s:
      if hasSuffix suffix s
      then builtins.substring 0 (builtins.stringLength s - builtins.stringLength suffix) s
      else s;
    boolToString = b: if b then "true" else "false";

    # --- misc -----------------------------------------------------------------
    min = a: b: if a < b then a else b;
    max = a: b: if a > b then a else b;
    id = x: x;
    const = x: _: x;
    fix = f: let x = f x; in x;
    versionAtLeast = a: b: builtins.compareVersions a b >= 0;
    version = "25.11";

    # --- entry points (see ./modules.nix and ./nixos.nix) ----------------------
    evalModules = import ./modules.nix { inherit lib; };
    nixosSystem = import ./nixos.nix { inherit lib; };
  };
in
lib
