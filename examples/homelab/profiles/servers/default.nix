# Servers.
{ ... }:
{
  services.fail2ban.enable = true;
}
