# Stands for colmena's deployment options module (colmena adds it to every
# node): deployment.* are options, with colmena's defaults.
{ lib, name, ... }:
{
  options.deployment = lib.mkOption {
    default = {
      targetHost = name;
      targetUser = "root";
      targetPort = null;
      allowLocalDeployment = false;
      buildOnTarget = false;
      tags = [ ];
      keys = { };
    };
  };
}
