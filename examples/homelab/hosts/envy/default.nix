# Hardware and host-specific settings of envy.
{ name, ... }:
{
  networking.hostName = name;
}
