#!/bin/sh
# switch-to-configuration for host "@hostName@" (mini-nixpkgs test fixture).
#
# Usage: switch-to-configuration switch|boot|test|dry-activate
#
#   switch        point /run/current-system and the boot entry at this system
#   boot          only point the boot entry /nix/var/lab/boot/default here
#   test          only point /run/current-system here
#   dry-activate  print what would change, change nothing
#
# Every run with a valid goal appends "<unix-time> <goal> <toplevel> ok|failed"
# to /nix/var/log/switch-to-configuration.log. All absolute paths are
# prefixed with $LAB_ROOT (default: empty).

toplevel=@toplevel@
goal=${1-}
root=${LAB_ROOT-}
currentLink=$root/run/current-system
bootLink=$root/nix/var/lab/boot/default
logDir=$root/nix/var/log
logFile=$logDir/switch-to-configuration.log

failActivation=@failActivation@
activationDelay=@activationDelay@

usage() {
    echo "usage: switch-to-configuration switch|boot|test|dry-activate" >&2
    exit 1
}

log() {
    mkdir -p "$logDir" && echo "$(date +%s) $goal $toplevel $1" >>"$logFile"
}

fail() {
    echo "$1" >&2
    log failed
    exit 1
}

# setLink LINK: atomically point LINK at this system.
setLink() {
    mkdir -p "$(dirname "$1")" &&
        ln -sfn "$toplevel" "$1.tmp.$$" &&
        mv -T "$1.tmp.$$" "$1"
}

describeLink() {
    old=$(readlink "$1" 2>/dev/null) || old="(none)"
    if [ "$old" = "$toplevel" ]; then
        echo "would keep $1 -> $toplevel (unchanged)"
    else
        echo "would change $1: $old -> $toplevel"
    fi
}

postActivation() (
@postActivation@
)

case $goal in
switch | boot | test | dry-activate) ;;
*) usage ;;
esac

if [ "$goal" = dry-activate ]; then
    echo "dry-activate: $toplevel"
    describeLink "$currentLink"
    describeLink "$bootLink"
    log ok
    exit 0
fi

if [ "$activationDelay" -gt 0 ]; then
    echo "waiting ${activationDelay}s before activating (fleet.test.activationDelay)"
    sleep "$activationDelay"
fi

if [ "$failActivation" = 1 ]; then
    fail "activation failed on purpose (fleet.test.failActivation)"
fi

echo "activating $toplevel ($goal)"
if [ "$goal" = switch ] || [ "$goal" = test ]; then
    setLink "$currentLink" || fail "could not update $currentLink"
fi
if [ "$goal" = switch ] || [ "$goal" = boot ]; then
    setLink "$bootLink" || fail "could not update $bootLink"
fi
log ok

postActivation || echo "warning: postActivation exited with status $? (ignored)" >&2
exit 0
