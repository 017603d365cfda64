{ nodes, ... }:
{
  services.postgresql.enable = true;
  # Reads another node's configuration, as colmena's nodes argument allows.
  environment.etc."web-host".text = nodes.web.config.networking.hostName + "\n";
}
