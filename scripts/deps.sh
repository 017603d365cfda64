#!/usr/bin/env bash
# make deps: installs what fleet's end-to-end tests and demo use — Nix
# (Debian's nix-bin), OpenSSH's sshd and client, sudo, iproute2 — and makes
# the machine's Nix usable: Debian's nix-bin alone (without the
# recommended nix-setup-systemd) creates no build users, so root's Nix
# refuses to build ("the group 'nixbld' specified in 'build-users-group'
# does not exist"). It creates them as Nix's own installer does.
#
# Only what is missing, so it is fast when there is nothing to do, and it
# says what it did. Installing needs root and apt-get (Debian/Ubuntu);
# otherwise it names what to install and exits 0 (the tests then fail or
# skip loudly).
#
# fleet's own tests, demo and bench do not depend on any of the machine's
# Nix settings: they read the nix.conf the project writes (internal/nixconf).
# The build users are for the machine's Nix as a person uses it.
set -euo pipefail
say() { echo "deps: $*"; }
did=0

need=()
command -v nix-store >/dev/null || need+=(nix-bin)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v sudo >/dev/null || need+=(sudo)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) or run as root"
    exit 0
  fi
  say "installing ${need[*]} (apt-get, --no-install-recommends) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  did=1
fi

# Build users, as the Nix installer makes them: group nixbld, users
# nixbld1..10 without a home or a login shell.
if [ "$(id -u)" = 0 ] && command -v groupadd >/dev/null; then
  if ! getent group nixbld >/dev/null; then
    groupadd --system nixbld
    say "created group nixbld (Nix's build-users-group)"
    did=1
  fi
  made=()
  for i in $(seq 1 10); do
    if ! id -u "nixbld$i" >/dev/null 2>&1; then
      useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin \
        --gid nixbld --groups nixbld --comment "Nix build user $i" "nixbld$i"
      made+=("nixbld$i")
    fi
  done
  if [ ${#made[@]} -gt 0 ]; then
    say "created Nix build users ${made[0]}..${made[-1]} (${#made[@]})"
    did=1
  fi
fi

[ $did = 1 ] || say "nothing to do (nix $(nix-store --version 2>/dev/null | awk '{print $NF}'), sshd, sudo, iproute2 and build users present)"
