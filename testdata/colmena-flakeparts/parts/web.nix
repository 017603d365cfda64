{ ... }: {
  flake.colmena.web = { inputs, ... }: {
    deployment.targetHost = "web.internal";
    deployment.targetUser = "deploy";
    deployment.tags = [ "web" ];
    environment.etc.nixpkgs-input.text = "${inputs.nixpkgs.lib.version}\n";
  };
}
