# The derivations making up a host's system closure:
#
#   toplevel  nixos-system-<hostName>-<version>
#     nixos-version                   the version string
#     config.json                     the merged config (see modules.nix)
#     etc -> <etc-<hostName>>/etc     separate store path
#     bin/switch-to-configuration     see ./switch-to-configuration.sh
#     packages                        environment.systemPackages, one per line
#     payload                         fleet.test.payload store paths, one per line
#     kernel, initrd, kernel-modules  links into <linux-<hostName>>, only when
#                                     fleet.test.kernel is set (its version)
#
# Builders run with an empty PATH and no stdenv: /bin/sh + absolute paths.
{ lib, system, config, configJSON }:
let
  hostName = config.networking.hostName;
  version = config.system.nixos.version;
  test = config.fleet.test;

  # The build script is passed as a file ($buildScriptPath) so that it may be
  # long, and so that the attribute NAMES of every derivation are fixed: the
  # derivations are part of `config` (system.build.*), and their names must
  # not depend on config values or evaluation would recurse forever.
  mkDerivation = { name, script, passAsFile ? [ ], ... }@attrs:
    derivation (removeAttrs attrs [ "script" ] // {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-e" "-c" ". \"$buildScriptPath\"" ];
      buildScript = script;
      passAsFile = passAsFile ++ [ "buildScript" ];
    });

  q = lib.escapeShellArg;

  # --- etc-<hostName> -----------------------------------------------------------
  # environment.etc.<name> = { text = "..."; } or { source = <path/drv>; }
  # (enable = false skips an entry). Plus etc/fleet/config.json.
  etcEntries = builtins.filter (e: e.enable or true)
    (lib.mapAttrsToList (name: e: e // { inherit name; }) (config.environment.etc or { }));
  etcLine = e:
    let target = "\"$out\"/etc/" + q e.name; in
    "/bin/mkdir -p \"$(/usr/bin/dirname ${target})\"\n" + (
      if e ? text then "printf '%s' ${q e.text} >${target}\n"
      else if e ? source then "/bin/ln -s ${q "${e.source}"} ${target}\n"
      else throw "environment.etc.\"${e.name}\" needs `text' or `source'"
    );

  etc = mkDerivation {
    name = "etc-${hostName}";
    inherit configJSON;
    passAsFile = [ "configJSON" ];
    script = ''
      /bin/mkdir -p "$out/etc/fleet"
      /bin/cp "$configJSONPath" "$out/etc/fleet/config.json"
    '' + lib.concatMapStrings etcLine etcEntries;
  };

  # --- fleet.test.payload ---------------------------------------------------------
  # count store paths of sizeKB KiB each: a header line naming host and index,
  # padded with zero bytes. Built as multi-output derivations of up to 64
  # outputs each (one build per chunk instead of one per path); every output
  # is a separate store path named fleet-payload-<hostName>-p<index>.
  payload = if test.payload == null then { } else test.payload;
  payloadCount = payload.count or 0;
  payloadBytes = (payload.sizeKB or 1024) * 1024;
  chunkSize = 64;
  chunks = lib.genList
    (c: lib.genList (i: c * chunkSize + i)
      (lib.min chunkSize (payloadCount - c * chunkSize)))
    ((payloadCount + chunkSize - 1) / chunkSize);
  payloadChunk = indices: mkDerivation {
    name = "fleet-payload-${hostName}";
    outputs = map (i: "p${toString i}") indices;
    inherit hostName;
    script = lib.concatMapStrings
      (i: ''
        { printf 'fleet payload host=%s index=%d\n' "$hostName" ${toString i}; /bin/head -c ${toString payloadBytes} /dev/zero; } | /bin/head -c ${toString payloadBytes} >"$p${toString i}"
      '')
      indices;
  };
  payloadPaths = lib.concatMap (indices: let drv = payloadChunk indices; in map (i: drv."p${toString i}") indices) chunks;

  # --- fleet.test.kernel ----------------------------------------------------------
  # A stand-in kernel, initrd and modules tree whose content is the version
  # string: changing the option changes the paths that reboot(if_needed)
  # compares with /run/booted-system's.
  kernelVersion = test.kernel or null;
  kernel = mkDerivation {
    name = "linux-${hostName}";
    version = toString kernelVersion;
    script = ''
      /bin/mkdir -p "$out/lib/modules/$version"
      printf 'kernel %s\n' "$version" >"$out/bzImage"
      printf 'initrd %s\n' "$version" >"$out/initrd"
      printf 'modules %s\n' "$version" >"$out/lib/modules/$version/modules.dep"
    '';
  };
  kernelLinks = if kernelVersion == null then "" else ''
    /bin/ln -s ${kernel}/bzImage "$out/kernel"
    /bin/ln -s ${kernel}/initrd "$out/initrd"
    /bin/ln -s ${kernel}/lib/modules "$out/kernel-modules"
  '';

  # --- bin/switch-to-configuration --------------------------------------------------
  boolTo01 = b: if b then "1" else "0";
  switchScript = builtins.replaceStrings
    [ "@toplevel@" "@hostName@" "@failActivation@" "@activationDelay@" "@unitsFailed@" "@postActivation@" ]
    [
      (builtins.placeholder "out")
      hostName
      (boolTo01 test.failActivation)
      (if test.activationDelay == null then "0" else toString test.activationDelay)
      (boolTo01 (test.unitsFailed or false))
      (if test.postActivation == "" || test.postActivation == null then ":" else test.postActivation)
    ]
    (builtins.readFile ./switch-to-configuration.sh);

  # --- the toplevel -------------------------------------------------------------------
  toplevel = mkDerivation {
    name = "nixos-system-${hostName}-${version}";
    inherit version configJSON etc switchScript;
    packages = lib.concatMapStrings (p: "${p}\n") (config.environment.systemPackages or [ ]);
    payload = lib.concatMapStrings (p: "${p}\n") payloadPaths;
    passAsFile = [ "configJSON" "switchScript" "packages" "payload" ];
    script = ''
      /bin/mkdir -p "$out/bin"
      printf '%s' "$version" >"$out/nixos-version"
      /bin/cp "$configJSONPath" "$out/config.json"
      /bin/ln -s "$etc/etc" "$out/etc"
      /bin/cp "$switchScriptPath" "$out/bin/switch-to-configuration"
      /bin/chmod 0555 "$out/bin/switch-to-configuration"
      /bin/cp "$packagesPath" "$out/packages"
      /bin/cp "$payloadPath" "$out/payload"
    '' + kernelLinks;
  };
in
{
  inherit toplevel etc payloadPaths;
}
