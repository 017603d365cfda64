#!/usr/bin/env bash
# make demo: the seed's homelab, planned with fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "\$ fleet hosts examples/homelab/fleet.star"
bin/fleet hosts examples/homelab/fleet.star
echo
echo "\$ fleet plan --on envy,lenovo examples/homelab/fleet.star"
bin/fleet plan --on envy,lenovo examples/homelab/fleet.star
