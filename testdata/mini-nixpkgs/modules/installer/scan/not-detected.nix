# Stand-in for nixpkgs' nixos/modules/installer/scan/not-detected.nix.
{ lib, ... }:
{
  hardware.enableRedistributableFirmware = lib.mkDefault true;
}
