#!/usr/bin/env bash
# make demo: deploy the seed's homelab (examples/homelab/fleet.star, as
# is) to a lab of four simulated NixOS hosts on this machine: one real
# sshd and one /nix store per host, in a private network namespace. The seed's
# 10.0.0.x addresses reach the lab through an ssh_config; the flake's
# github inputs are replaced by offline stand-ins (--override-input).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "make demo needs root: the lab uses namespaces and runs sshd" >&2
  exit 1
fi
# fleet-lab gives the commands the project's own nix.conf (internal/nixconf):
# no build users, no sandbox, no binary cache (the lab is offline), aarch64
# (rpi4-a) built natively, standing in for the seed's binfmt.
exec bin/fleet-lab -q --hosts envy,lenovo,rpi4-a,clawfinger \
  --alias 10.0.0.10=envy,10.0.0.61=lenovo,10.0.0.11=rpi4-a \
  -- bash -c '
set -e
fleet() { echo; echo "\$ fleet $*" | sed "s| --ssh-config [^ ]*||; s| --override-input [^ ]*||g"; bin/fleet "$@"; }
lab=(--ssh-config "$FLEET_LAB_SSH_CONFIG"
     --override-input nixpkgs=testdata/mini-nixpkgs
     --override-input sops-nix=testdata/mini-nixpkgs/sops-nix
     --override-input disko=testdata/lab/stub-inputs
     --override-input home-manager=testdata/lab/stub-inputs)
fleet hosts examples/homelab/fleet.star
fleet plan --on envy,lenovo examples/homelab/fleet.star
fleet run "${lab[@]}" --on envy,lenovo examples/homelab/fleet.star
fleet run "${lab[@]}" examples/homelab/fleet.star
echo
echo "# what each lab host runs now:"
for h in envy lenovo rpi4-a clawfinger; do
  cur=$(ssh -F "$FLEET_LAB_SSH_CONFIG" "$h" readlink /run/current-system || true)
  printf "%10s  /run/current-system -> %s\n" "$h" "${cur:-(nothing: never deployed, it has no target_host)}"
done
'
