# As nixos-generate-config writes it.
{ config, lib, pkgs, modulesPath, ... }: {
  imports = [ (modulesPath + "/installer/scan/not-detected.nix") ];
  boot.initrd.availableKernelModules = [ "ahci" "xhci_pci" ];
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
}
