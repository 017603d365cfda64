# Hardware and host-specific settings of clawfinger.
{ name, ... }:
{
  networking.hostName = name;
}
