{
  description = "The seed's homelab; fleet.star is its inventory and host factory";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    sops-nix.url = "github:Mic92/sops-nix";
    sops-nix.inputs.nixpkgs.follows = "nixpkgs";
    disko.url = "github:nix-community/disko";
    disko.inputs.nixpkgs.follows = "nixpkgs";
    home-manager.url = "github:nix-community/home-manager/release-25.11";
    home-manager.inputs.nixpkgs.follows = "nixpkgs";
  };

  # fleet evaluates inputs.nixpkgs.lib.nixosSystem itself from fleet.star;
  # `fleet export nix` writes nixosConfigurations for nixos-anywhere.
  outputs = { self, ... }: { };
}
