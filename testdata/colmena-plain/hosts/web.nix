{ name, ... }: {
  environment.etc."web-name".text = "${name}\n";
}
