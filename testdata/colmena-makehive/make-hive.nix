# fleet's stand-in for colmena.lib.makeHive, for this fixture only: each
# node evaluated with nixosSystem, the deployment options reduced to
# their colmena defaults (untyped), returned in the shape of colmena's
# evaluated hive (schema v0.5) that fleet reads. Not colmena's evaluator:
# no defaults, no meta.specialArgs, no nodeNixpkgs.
hive:
let
  pkgs = hive.meta.nixpkgs;
  inherit (pkgs) lib;
  names = builtins.filter (n: n != "meta") (builtins.attrNames hive);
  defaultsOf = name: {
    targetHost = name;
    targetPort = null;
    targetUser = "root";
    allowLocalDeployment = false;
    buildOnTarget = false;
    tags = [ ];
    keys = { };
    replaceUnknownProfiles = true;
    privilegeEscalationCommand = [ "sudo" "-H" "--" ];
    sshOptions = [ ];
  };
  options = { name, ... }: {
    options.deployment = builtins.mapAttrs (_: d: lib.mkOption { default = d; }) (defaultsOf name);
  };
  nodes = lib.genAttrs names (name: lib.nixosSystem {
    inherit (pkgs) system;
    modules = [ options hive.${name} ];
    specialArgs = { inherit name nodes; };
  });
in
{
  __schema = "v0.5";
  inherit nodes;
  toplevel = builtins.mapAttrs (_: n: n.config.system.build.toplevel) nodes;
  deploymentConfig = builtins.mapAttrs (_: n: n.config.deployment) nodes;
}
