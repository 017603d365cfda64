# Stand-in for nixpkgs' nixos/modules/profiles/minimal.nix.
{ lib, ... }:
{
  documentation.enable = lib.mkDefault false;
}
