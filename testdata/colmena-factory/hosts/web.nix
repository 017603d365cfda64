{ name, ... }: { environment.etc.role.text = "web\n"; }
