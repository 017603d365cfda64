#!/usr/bin/env bash
# Installs what fleet's end-to-end tests and demo use: Nix (Debian's
# nix-bin), OpenSSH's sshd and sudo. Only as root on Debian/Ubuntu, and
# only what is missing.
set -euo pipefail
need=()
command -v nix-store >/dev/null || need+=(nix-bin)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v sudo >/dev/null || need+=(sudo)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "fleet: missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) or run as root" >&2
    exit 0
  fi
  echo "installing ${need[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# sshd must not run as a system service here; the lab starts its own.
