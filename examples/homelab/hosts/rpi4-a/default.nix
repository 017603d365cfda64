# Hardware and host-specific settings of rpi4-a.
{ name, ... }:
{
  networking.hostName = name;
}
