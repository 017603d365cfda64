{ name, ... }:
{
  services.nginx.enable = true;
  environment.etc."motd".text = "web server ${name}\n";
}
