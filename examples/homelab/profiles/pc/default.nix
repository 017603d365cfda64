# Developer machines.
{ ... }:
{
  services.xserver.enable = true;
}
