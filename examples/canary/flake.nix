{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
  outputs = { self, nixpkgs }:
    let
      web = name: nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [{ networking.hostName = name; services.nginx.enable = true; }];
      };
    in {
      nixosConfigurations = nixpkgs.lib.genAttrs [ "web1" "web2" "web3" "web4" "web5" ] web;
    };
}
