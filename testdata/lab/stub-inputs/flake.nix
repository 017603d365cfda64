{
  description = "Offline stand-ins for disko and home-manager (fleet's lab): each provides its NixOS module";

  outputs = { self }: {
    nixosModules.disko = { lib, ... }: {
      options.disko = lib.mkOption { default = { }; };
      config.disko.enabled = true;
    };
    nixosModules.home-manager = { lib, ... }: {
      options.home-manager = lib.mkOption { default = { }; };
      config.home-manager.enabled = true;
    };
  };
}
