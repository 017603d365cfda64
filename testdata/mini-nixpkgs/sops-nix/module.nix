# Stand-in for sops-nix' NixOS module: sets sops.enabled = true and lists the
# declared secret names in /etc/sops-nix/secrets.
{ config, lib, ... }:
{
  options.sops = {
    secrets = lib.mkOption { default = { }; };
    defaultSopsFile = lib.mkOption { default = null; };
  };

  config = {
    sops.enabled = true;
    environment.etc."sops-nix/secrets".text =
      lib.concatMapStrings (name: name + "\n") (lib.attrNames config.sops.secrets);
  };
}
