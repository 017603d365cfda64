{ lib, ... }:
{
  time.timeZone = lib.mkDefault "UTC";
  services.openssh.enable = true;
}
