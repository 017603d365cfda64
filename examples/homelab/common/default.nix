# Baseline of every machine. `hosts` is the whole inventory (inventory()
# in fleet.star), so every machine knows every other one's address.
{ lib, version, hosts, ... }:
{
  time.timeZone = "Europe/Zurich";
  services.openssh.enable = true;
  system.stateVersion = version;
  networking.hosts = lib.mapAttrs (name: h: h.targetHost) (lib.filterAttrs (name: h: h.deployable) hosts);
}
