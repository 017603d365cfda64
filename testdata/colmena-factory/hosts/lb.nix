{ name, ... }: { environment.etc.role.text = "lb\n"; }
