// Package mininix holds the tests of testdata/mini-nixpkgs, the offline
// stand-in for nixpkgs that fleet's tests build NixOS systems with: its
// module system (lib.nixosSystem), the system closure it produces and that
// closure's bin/switch-to-configuration (NixOS's exit statuses and lock).
// It also tests testdata/lab/systemd-run, the stand-in systemd-run and
// systemctl that lab hosts can offer, alone and running that
// switch-to-configuration as nixos-rebuild-ng does. The package has no
// non-test code.
//
// The tests that build systems need `nix` (2.8 or later, single-user as
// root is fine) and skip, loudly, without it – unless FLEET_REQUIRE_LAB=1,
// which makes that a failure. The stand-in's own tests need only bash and
// util-linux's setsid.
package mininix
