# Hardware and host-specific settings of lenovo.
{ name, ... }:
{
  networking.hostName = name;
}
