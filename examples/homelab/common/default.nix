# Baseline of every machine.
{ version, ... }:
{
  time.timeZone = "Europe/Zurich";
  services.openssh.enable = true;
  system.stateVersion = version;
}
