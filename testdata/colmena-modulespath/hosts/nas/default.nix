{ ... }: {
  imports = [ ./hardware-configuration.nix ];
  environment.etc.nas.text = "nas\n";
}
