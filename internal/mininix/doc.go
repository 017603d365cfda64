// Package mininix holds the tests of testdata/mini-nixpkgs, the offline
// stand-in for nixpkgs that fleet's tests build NixOS systems with: its
// module system (lib.nixosSystem), the system closure it produces and that
// closure's bin/switch-to-configuration. The package has no non-test code.
//
// The tests need `nix` (2.8 or later, single-user as root is fine) and skip,
// loudly, without it – unless FLEET_REQUIRE_LAB=1, which makes that a
// failure.
package mininix
