{
  description = "Stand-in for sops-nix (fleet tests): provides nixosModules.sops";

  outputs = { self }: {
    nixosModules.sops = ./module.nix;
    nixosModules.default = self.nixosModules.sops;
  };
}
