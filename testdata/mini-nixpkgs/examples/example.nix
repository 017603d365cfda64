# An example host module, built by `nixosConfigurations.example`.
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/minimal.nix") ];

  environment.systemPackages = [ pkgs.hello ];
  environment.etc."motd".text = "Welcome to ${config.networking.hostName}\n";
  services.openssh.enable = true;
}
