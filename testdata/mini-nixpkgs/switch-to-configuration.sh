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
# Every run that gets past the lock appends
# "<unix-time> <goal> <toplevel> ok|failed|units-failed" to
# /nix/var/log/switch-to-configuration.log. All absolute paths are prefixed
# with $LAB_ROOT (default: empty).
#
# Exit status, as NixOS's switch-to-configuration-ng: 0 done; 1 usage or
# activation failed (nothing changed); 4 switched, but units failed
# (fleet.test.unitsFailed); 11 (EWOULDBLOCK) another switch holds the lock;
# 101 a message could not be written (its output pipe closed), the switch
# stopped where it was.

toplevel=@toplevel@
goal=${1-}
root=${LAB_ROOT-}
currentLink=$root/run/current-system
bootLink=$root/nix/var/lab/boot/default
logDir=$root/nix/var/log
logFile=$logDir/switch-to-configuration.log
lockDir=$root/run/nixos
lockFile=$lockDir/switch-to-configuration.lock

failActivation=@failActivation@
activationDelay=@activationDelay@
unitsFailed=@unitsFailed@
failedUnit=fleet-test-failing.service

# Like the Rust program (and any systemd service), ignore SIGPIPE: writing
# to a closed pipe fails with EPIPE, and say/warn turn that into panic.
trap '' PIPE

usage() {
    echo "usage: switch-to-configuration switch|boot|test|dry-activate" >&2
    exit 1
}

log() {
    mkdir -p "$logDir" && echo "$(date +%s) $goal $toplevel $1" >>"$logFile"
}

# panic is what switch-to-configuration-ng does when a message cannot be
# written (println!/eprintln! panic), e.g. to the --pipe of a dropped SSH
# connection: exit 101 right there, whatever is half done (nixpkgs #462179).
panic() {
    echo "thread 'main' panicked: failed printing to stdout: Broken pipe (os error 32)" >&2 2>/dev/null
    log panicked
    exit 101
}

say() { echo "$@" || panic; }
warn() { echo "$@" >&2 || panic; }

fail() {
    warn "$1"
    log failed
    exit 1
}

# lock takes NixOS's switch lock on fd 9 for the rest of the run, as
# switch-to-configuration-ng does (do_system_switch): it creates /run/nixos
# 0755, opens /run/nixos/switch-to-configuration.lock for appending
# (creating it) and takes an exclusive flock WITHOUT blocking
# (FlockArg::LockExclusiveNonblock). If another switch holds it, it prints
# "Could not acquire lock" and exits with the errno of the failed flock,
# EWOULDBLOCK = 11 on Linux (its die()), having changed and logged nothing.
# The lock is released when the process exits; children started with fd 9
# closed (postActivation) do not hold it.
lock() {
    mkdir -p "$lockDir" && chmod 0755 "$lockDir" || {
        echo "Failed to create $lockDir directory" >&2
        exit 1
    }
    exec 9>>"$lockFile" || {
        echo "Could not open lock" >&2
        exit 1
    }
    flock -n 9 || {
        echo "Could not acquire lock" >&2
        exit 11
    }
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
        say "would keep $1 -> $toplevel (unchanged)"
    else
        say "would change $1: $old -> $toplevel"
    fi
}

postActivation() (
@postActivation@
)

case $goal in
switch | boot | test | dry-activate) ;;
*) usage ;;
esac

lock

if [ "$goal" = dry-activate ]; then
    say "dry-activate: $toplevel"
    describeLink "$currentLink"
    describeLink "$bootLink"
    log ok
    exit 0
fi

if [ "$activationDelay" -gt 0 ]; then
    say "waiting ${activationDelay}s before activating (fleet.test.activationDelay)"
    sleep "$activationDelay"
fi

if [ "$failActivation" = 1 ]; then
    fail "activation failed on purpose (fleet.test.failActivation)"
fi

say "activating $toplevel ($goal)"
if [ "$goal" = switch ] || [ "$goal" = boot ]; then
    setLink "$bootLink" || fail "could not update $bootLink"
fi
if [ "$goal" = switch ] || [ "$goal" = test ]; then
    warn "activating the configuration..."
    setLink "$currentLink" || fail "could not update $currentLink"
fi

# Units are started only by switch and test (boot exits before that in
# NixOS too), so only they can end "switched, with failed units".
result=ok
if [ "$unitsFailed" = 1 ] && [ "$goal" != boot ]; then
    result=units-failed
fi
log "$result"

postActivation 9>&- || warn "warning: postActivation exited with status $? (ignored)"

if [ "$result" = units-failed ]; then
    # What switch-to-configuration-ng prints when a started unit fails: the
    # job result, the list of failed units, then `systemctl status` of
    # them; then it exits 4 with the new system active.
    warn "Failed to start $failedUnit"
    warn "warning: the following units failed: $failedUnit"
    say "× $failedUnit - unit that fails on purpose (fleet.test.unitsFailed)"
    say "     Active: failed (Result: exit-code)"
    exit 4
fi
exit 0
