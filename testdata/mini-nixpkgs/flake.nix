{
  description = "mini-nixpkgs: a tiny, offline stand-in for nixpkgs used by fleet's tests";

  # No inputs: nothing is ever fetched.
  outputs = { self }:
    let
      lib = import ./lib.nix;
      systems = [ "x86_64-linux" "aarch64-linux" ];
    in
    {
      inherit lib;

      legacyPackages = lib.genAttrs systems (system: import ./pkgs.nix { inherit lib system; });

      # For building by hand, see README.md.
      nixosConfigurations.example = lib.nixosSystem {
        system = "x86_64-linux";
        specialArgs = { name = "example"; };
        modules = [ ./examples/example.nix ];
      };
    };
}
