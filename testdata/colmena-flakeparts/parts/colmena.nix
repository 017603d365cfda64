{ inputs, ... }: {
  flake.colmena = {
    meta.nixpkgs = inputs.nixpkgs.legacyPackages.x86_64-linux;
    meta.specialArgs = { inherit inputs; };
    defaults = { deployment.tags = [ "parts" ]; };
    db = { name, ... }: {
      deployment.targetHost = "${name}.internal";
      deployment.buildOnTarget = true;
    };
  };
}
