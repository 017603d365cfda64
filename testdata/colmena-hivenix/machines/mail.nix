{ name, ... }: {
  deployment.targetHost = "${name}.example.com";
  deployment.targetPort = 22;
  deployment.tags = [ "mail" ];
  deployment.keys.dkim = { keyFile = ../secrets/dkim.key; };
}
