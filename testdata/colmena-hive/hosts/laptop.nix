{ ... }:
{
  services.xserver.enable = true;
}
