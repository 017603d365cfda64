# `pkgs` of mini-nixpkgs: a handful of trivial builders. There is no stdenv;
# runCommand scripts run under /bin/sh with PATH=/usr/bin:/bin of the build
# machine.
{ lib, system }:
let
  runCommand = name: env: script:
    derivation ({
      inherit name system;
      builder = "/bin/sh";
      args = [ "-e" "-c" script ];
      PATH = "/usr/bin:/bin";
    } // env);
  writeTextFile = { name, text, executable ? false, destination ? "" }:
    runCommand name { inherit text; passAsFile = [ "text" ]; } ''
      target="$out"${lib.escapeShellArg destination}
      mkdir -p "$(dirname "$target")"
      cp "$textPath" "$target"
      ${lib.optionalString executable ''chmod +x "$target"''}
    '';
in
{
  inherit lib system runCommand writeTextFile;
  # As in nixpkgs: the source (nixos/lib/eval-config.nix), and the
  # overlays and config pkgs was made with.
  path = ./.;
  overlays = [ ];
  config = { };
  stdenv = {
    inherit system;
    hostPlatform = { inherit system; };
    buildPlatform = { inherit system; };
  };
  writeText = name: text: writeTextFile { inherit name text; };
  writeShellScript = name: text: writeTextFile { inherit name; text = "#!/bin/sh\n" + text; executable = true; };
  writeShellScriptBin = name: text: writeTextFile {
    inherit name;
    text = "#!/bin/sh\n" + text;
    executable = true;
    destination = "/bin/${name}";
  };
  hello = writeTextFile {
    name = "hello-2.12";
    text = "#!/bin/sh\necho 'Hello, world!'\n";
    executable = true;
    destination = "/bin/hello";
  };
}
