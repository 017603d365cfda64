#!/usr/bin/env bash
# fresh-root.sh: run commands in a clone of this checkout's HEAD inside a
# brand-new Debian bookworm root, the way a newcomer's machine would be:
# nothing installed by hand, no /etc/nix, no nixbld group, no ~/.ssh, no Go
# module cache. CI (.ci/run) runs the README's test command this way, so a
# missing install step in scripts/deps.sh fails CI instead of hiding behind
# what an earlier install left on the CI machine.
#
#   scripts/fresh-root.sh                  # make test
#   scripts/fresh-root.sh 'make demo'      # any commands, one bash -c
#   KEEP=1 scripts/fresh-root.sh ...       # keep the root to look inside
#
# The root gets what a machine of this kind has before anyone touches it
# (make, git, gcc, systemd (not running), ca-certificates, iproute2,
# openssh-client, procps, python3, curl, bc, time, util-linux, xz-utils,
# and this machine's Go at /usr/local/go); everything else the project's own
# files must install. Needs root and a Debian mirror in /etc/apt. Set
# FRESH_ROOT_CACHE=DIR to keep debootstrap's downloaded packages between runs
# (the root itself is always new).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "fresh-root: run as root" >&2; exit 2; }
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cmds=${1:-make test}

command -v debootstrap >/dev/null || {
  echo "fresh-root: installing debootstrap ..." >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
# The Debian mirror this machine is set up with, whatever it is.
mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -v security | head -1 | awk '{print $2}' || true)
[ -n "$mirror" ] || { echo "fresh-root: no Debian mirror found in /etc/apt" >&2; exit 2; }
[ -x /usr/local/go/bin/go ] || { echo "fresh-root: no Go at /usr/local/go" >&2; exit 2; }

root=$(mktemp -d /var/tmp/fleet-fresh-root.XXXXXX)
chmod 755 "$root" # it becomes /: sshd and other users must traverse it
finish() {
  local status=$?
  if [ "${KEEP:-}" = 1 ]; then echo "fresh-root: root kept at $root" >&2
  else rm -rf --one-file-system "$root" "$root.debootstrap.log"; fi
  exit $status
}
trap finish EXIT

t0=$(date +%s)
cache=()
if [ -n "${FRESH_ROOT_CACHE:-}" ]; then
  mkdir -p "$FRESH_ROOT_CACHE"
  cache=(--cache-dir="$(cd "$FRESH_ROOT_CACHE" && pwd)")
fi
echo "fresh-root: debootstrap bookworm from $mirror ..." >&2
debootstrap --variant=minbase "${cache[@]}" \
  --include=make,git,gcc,libc6-dev,systemd,systemd-sysv,ca-certificates,iproute2,openssh-client,procps,python3,curl,bc,time,util-linux,xz-utils \
  bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
  || { tail -20 "$root.debootstrap.log" >&2; exit 2; }
cp -a /usr/local/go "$root/usr/local/go"
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo fresh >"$root/etc/hostname"
# The certificate authorities this machine trusts (registries are reached
# through them) and its apt sources (the same mirror).
cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp -aL /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$root/src"
git clone -q --no-hardlinks "$top" "$root/src/project"
echo "fresh-root: root ready in $(($(date +%s) - t0)) s; running: $cmds" >&2

# A private mount namespace whose root IS the new root (pivot_root, not
# chroot: a process that enters another mount namespace, as lab hosts do,
# must land in the new root, not in this machine's).
set +e
unshare --mount --propagation private --fork bash -c '
  set -e
  r=$1; shift
  mount --bind "$r" "$r"
  mount --rbind /dev "$r/dev"
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount -t tmpfs tmpfs "$r/run"
  mount -t tmpfs tmpfs "$r/tmp"
  cd "$r"; mkdir -p .oldroot; pivot_root . .oldroot
  umount -l /.oldroot; rmdir /.oldroot
  exec /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /src/project && $1"
' fresh-root "$root" "$cmds"
status=$?
echo "fresh-root: exit $status after $(($(date +%s) - t0)) s" >&2
exit $status
