package executor

// This file holds the remote scripts of an activation (activate.go) and
// the one line they report. They are constants: user data only ever
// arrives as quoted arguments.
//
// An activation on the host is two processes. The session (ActivateScript,
// the SSH command) takes the host lock, writes the runner into the
// activation's state directory and starts it detached: as a transient
// systemd unit where systemd runs (systemd-run --wait, not --pipe: a
// switch whose output is the SSH channel dies when the connection drops,
// nixpkgs #462179), else with setsid. The runner takes the lock over from
// the session and does everything that changes the host: it reads what
// the host runs, sets the profile, runs switch-to-configuration with its
// output in a file, reads what the host runs again and, only then, sets
// the profile back if the host does not run (or boot) the new system. It
// writes one result line, and with a dead-man window keeps the lock and
// waits for fleet's confirmation, rolling back itself without one. So an
// interrupt, a dropped connection or an sshd restart can never leave the
// profile half done: what decides runs on the host, after the switch.
//
// Nothing polls. The session reads the runner's events from a FIFO
// ("waiting", "started", "result", and "launcher" when the launching
// command ends); a later session (collect, outcome) blocks on a lock the
// runner holds: busy until the result is written, alive until it exits.
//
// Locks, all flock(1) on files in /run/fleet:
//
//	lock   the host lock, one deploy at a time; its content says whose
//	gate   taken before lock, so that the handover of lock from a session
//	       to its runner cannot be overtaken by another session
//	DIR/busy, DIR/alive  the runner's, see above
//
// A session that must wait prints the holder (the lock file's first line)
// as "fleet-waiting HOLDER" on stderr, or with --no-wait exits 75 after
// "fleet-locked HOLDER".

// ActivateScript is the session. Arguments: state dir, closure, goal,
// confirm seconds, unit name, holder line, no-wait (0/1), install the
// boot loader (0/1), generation to delete after a successful switch
// ("" for none), reactivate (0/1).
//
// Unless told to reactivate, a host that already runs (switch, test) or
// boots (boot) the closure, its profile pointing at it, is left alone:
// the session answers "unchanged" at once, with no runner, no switch and
// no dead-man window. For switch and test the host's last switch must
// also have succeeded, with this closure (/run/fleet/ok, written by the
// runner): a switch that failed half way, or ended with failed units, is
// run again. /run is gone after a reboot, so the first deploy after one
// switches again. activate.go's fromSeen applies the same rule, in Go,
// to what a push just saw: change one, change the other.
const ActivateScript = `dir=$1 closure=$2 goal=$3 confirm=$4 unit=$5 holder=$6 nowait=$7 bootloader=$8 drop=$9 reactivate=${10}
umask 077
cd / && mkdir -p /run/fleet "$dir" || exit 111
take() { # take FD: flock FD, saying whose deploy it waits for
  flock -n "$1" && return
  h=$(head -n 1 /run/fleet/lock 2>/dev/null)
  if [ "$nowait" = 1 ]; then echo "fleet-locked $h" >&2; exit 75; fi
  echo "fleet-waiting $h" >&2
  flock "$1"
}
exec 6>>/run/fleet/gate 9>>/run/fleet/lock || exit 111
take 6
take 9
if [ "$reactivate" != 1 ] && [ -z "$drop" ]; then
  cur=$(readlink /run/current-system) prof=$(readlink -f /nix/var/nix/profiles/system) link=$(readlink /nix/var/nix/profiles/system)
  boot=$(readlink /nix/var/lab/boot/default)
  same=
  case $goal in
  switch) [ "$cur" = "$closure" ] && [ "$prof" = "$closure" ] && [ "$(cat /run/fleet/ok 2>/dev/null)" = "$closure" ] && same=1 ;;
  test) [ "$cur" = "$closure" ] && [ "$(cat /run/fleet/ok 2>/dev/null)" = "$closure" ] && same=1 ;;
  boot) [ "$prof" = "$closure" ] && { [ -z "$boot" ] || [ "$boot" = "$closure" ]; } && same=1 ;;
  esac
  if [ -n "$same" ]; then
    g=${link##*system-}; g=${g%-link}; case $g in ''|*[!0-9]*) g= ;; esac
    printf 'fleet-result\t%s\t%s\t%s\t%s\t%s\t0\tunchanged\tnone\n' "$cur" "$cur" "$g" "$g" "$boot"
    exit 0
  fi
fi
rmdir "$dir/decided" 2>/dev/null
rm -f "$dir/result" "$dir/log" "$dir/confirmed" "$dir/rolledback" "$dir/sleep.pid" "$dir/events" "$dir/started"
cat >"$dir/runner" <<'FLEET_RUNNER' || exit 111
` + runnerScript + `FLEET_RUNNER
mkfifo "$dir/events" && exec 3<>"$dir/events" || exit 111
launch() { # launch VIA, in the background: start the runner detached; tell the FIFO when the launcher ends
  # Only the runner's own descriptors: an inherited copy of the lock's
  # would keep it from ever taking the lock over.
  exec </dev/null >/dev/null 2>"$dir/launch.log" 3>&- 6>&- 9>&-
  if [ "$1" = systemd ]; then
    NIXOS_INSTALL_BOOTLOADER=$bootloader systemd-run --collect --no-ask-password --quiet --service-type=exec \
      --unit="$unit" -E PATH -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER -E NIXOS_NO_CHECK --wait \
      sh "$dir/runner" "$dir" "$closure" "$goal" "$confirm" "$holder" systemd "$drop"
  else
    NIXOS_INSTALL_BOOTLOADER=$bootloader setsid -w sh "$dir/runner" "$dir" "$closure" "$goal" "$confirm" "$holder" setsid "$drop"
  fi
  echo "launcher $1 $?" >"$dir/events"
}
via=setsid
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then via=systemd; fi
launch "$via" &
started=
while read -r ev a b <&3; do
  case $ev in
  started) # the runner waits for the lock: hand it over
    started=1
    exec 9>&-
    ;;
  locked) # the runner holds it: let the next session through the gate
    exec 6>&-
    ;;
  result)
    tail -c 65536 "$dir/log" >&2
    cat "$dir/result"
    exit 0
    ;;
  launcher)
    [ -n "$started" ] && break
    if [ "$a" = systemd ]; then # systemd-run could not start it: no working systemd
      echo "fleet: systemd-run failed ($(tail -n 1 "$dir/launch.log")); running the switch with setsid" >&2
      launch setsid &
      continue
    fi
    break
    ;;
  esac
done
cat "$dir/launch.log" >&2
exit 113
`

// pushScript starts a push. Unless the host has the closure already
// (its system profile or /run/current-system points at it: a Nix GC
// root, so the whole closure is valid in its store), it prints
// "fleet-serve" and becomes the server (its arguments after the
// closure: `nix-store --serve --write`). When the host has it, it prints
// "fleet-has" and what the host runs, as ActivateScript reads it, and
// exits: no nix-store process and no query, and the activation that
// follows can answer "unchanged" without a session of its own
// (activate.go's fromSeen). Arguments: closure, the server's argv. A
// closure "-" is the first line of stdin (a push started before the
// closure was known, push.go's serveAhead); the shell's read takes that
// line and not a byte more, the rest is the server's. Without a line
// (the run ended first) it exits, having done nothing.
const pushScript = `closure=$1
shift
if [ "$closure" = - ]; then IFS= read -r closure || exit 0; fi
cur=$(readlink /run/current-system) prof=$(readlink -f /nix/var/nix/profiles/system)
if [ -n "$closure" ] && { [ "$cur" = "$closure" ] || [ "$prof" = "$closure" ]; }; then
  printf 'fleet-has\t%s\t%s\t%s\t%s\t%s\n' "$cur" "$prof" "$(readlink /nix/var/nix/profiles/system)" \
    "$(readlink /nix/var/lab/boot/default)" "$(cat /run/fleet/ok 2>/dev/null)"
  exit 0
fi
echo fleet-serve
exec "$@"
`

// runnerScript is the detached part, written to DIR/runner. Arguments:
// state dir, closure, goal, confirm seconds, holder line, how it was
// started (systemd, setsid), generation to delete after a successful
// switch.
const runnerScript = `dir=$1 closure=$2 goal=$3 confirm=$4 holder=$5 via=$6 drop=$7
profile=/nix/var/nix/profiles/system
bootentry=/nix/var/lab/boot/default
nixoslock=/run/nixos/switch-to-configuration.lock
cd / || exit 1
exec 3<>"$dir/events" 7>"$dir/alive" 8>"$dir/busy" 9>>/run/fleet/lock || exit 1
flock 7 && flock 8 || exit 1
: >"$dir/started"
echo started >&3
flock 9 || exit 1
echo locked >&3
printf '%s\n' "$holder" >/run/fleet/lock
gennum() { g=${1##*system-}; g=${g%-link}; case $g in ''|*[!0-9]*) echo ;; *) echo "$g" ;; esac; }
prev=$(readlink /run/current-system)
prevgen=$(gennum "$(readlink "$profile")")
[ -e "$dir/previous" ] || printf '%s\n' "$prev" >"$dir/previous"
status= decision=
finish() { # write the result line, release busy
  printf 'fleet-result\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$prev" "$(readlink /run/current-system)" \
    "$prevgen" "$(gennum "$(readlink "$profile")")" "$(readlink "$bootentry")" "$status" "$decision" "$via" >"$dir/result.tmp"
  mv "$dir/result.tmp" "$dir/result"
  echo result >&3
  exec 8>&-
}
: >"$dir/log"
if [ -e "$nixoslock" ] && ! flock -n "$nixoslock" true; then
  echo "Could not acquire lock: another switch-to-configuration is running" >>"$dir/log"
  status=11 decision=locked
  finish
  exit 0
fi
newgen=
case $goal in switch | boot)
  if [ ! -e "$closure/nixos-version" ] || [ ! -x "$closure/bin/switch-to-configuration" ]; then
    echo "$closure is not a complete NixOS system" >>"$dir/log"
    status=1 decision=not-a-system
    finish
    exit 0
  fi
  if [ "$(readlink -f "$profile")" != "$closure" ]; then
    nix-env -p "$profile" --set "$closure" >>"$dir/log" 2>&1 || { status=$? decision=profile-failed; finish; exit 0; }
    newgen=$(gennum "$(readlink "$profile")")
    [ "$newgen" = "$prevgen" ] && newgen=
  fi
esac
"$closure/bin/switch-to-configuration" "$goal" </dev/null >>"$dir/log" 2>&1
status=$?
cur=$(readlink /run/current-system)
boot=$(readlink "$bootentry")
# Does the host run or boot the new system? The boot entry, where the
# host has one fleet can read; else, as NixOS installs the boot loader
# before activating, a switch or boot that got as far as exit 0, 2 or 4.
runs=
case $goal in switch | test) [ "$cur" = "$closure" ] && runs=1 ;; esac
case $goal in switch | boot)
  if [ -n "$boot" ]; then
    [ "$boot" = "$closure" ] && runs=1
  else
    case $status in 0 | 2 | 4) runs=1 ;; esac
  fi
esac
# restore: point the profile back at the previous generation and delete
# the new one; only now that the switch has ended, and only when the host
# neither runs nor boots the new system.
restore() {
  if [ -n "$newgen" ] && [ -n "$prevgen" ]; then
    nix-env -p "$profile" --switch-generation "$prevgen" >>"$dir/log" 2>&1 &&
      nix-env -p "$profile" --delete-generations "$newgen" >>"$dir/log" 2>&1 && decision=$decision-restored
  fi
}
if [ "$goal" = dry-activate ]; then
  if [ "$status" = 0 ]; then decision=ok; else decision=failed; fi
elif [ -n "$runs" ]; then
  case $status in 0) decision=ok ;; 2 | 4) decision=units-failed ;; *) decision=switched-failed ;; esac
elif [ "$status" = 11 ]; then
  decision=locked
  restore
else
  decision=failed
  restore
fi
# What the host last switched to without a failure: a later session may
# leave a host alone only if this names the closure (/run/fleet/ok).
# With a dead-man window, only once fleet confirmed: until then the
# host may still go back.
rm -f /run/fleet/ok
armed=
if [ "$decision" = ok ] && [ "$confirm" -gt 0 ] && [ -n "$prev" ] && [ "$prev" != "$closure" ] && [ "$cur" = "$closure" ]; then armed=1; fi
if [ "$decision" = ok ] && [ -n "$runs" ] && [ "$goal" != boot ] && [ -z "$armed" ]; then printf '%s\n' "$closure" >/run/fleet/ok; fi
if [ "$decision" = ok ] && [ -n "$drop" ] && [ "$drop" != "$(gennum "$(readlink "$profile")")" ]; then
  nix-env -p "$profile" --delete-generations "$drop" >>"$dir/log" 2>&1
fi
if [ -n "$armed" ]; then
  # The dead-man window: unless fleet confirms (mkdir decided, then kill
  # the sleep), go back to prev and delete the generation that failed.
  sleep "$confirm" &
  echo $! >"$dir/sleep.pid"
  finish
  wait
  if ! mkdir "$dir/decided" 2>/dev/null; then # confirmed
    [ -n "$runs" ] && [ "$goal" != boot ] && printf '%s\n' "$closure" >/run/fleet/ok
    exit 0
  fi
  {
    echo "not confirmed within ${confirm}s: rolling back to $prev"
    ok=1
    if [ "$goal" = switch ]; then
      if [ -n "$prevgen" ] && [ "$(readlink -f "$profile-$prevgen-link")" = "$prev" ]; then
        nix-env -p "$profile" --switch-generation "$prevgen"
      else
        nix-env -p "$profile" --set "$prev"
      fi || ok=
      [ -n "$ok" ] && "$prev/bin/switch-to-configuration" switch </dev/null || ok=
      # The failed generation goes only once the host switched away from
      # it: until then it may be what the boot entry points at.
      [ -n "$ok" ] && [ -n "$newgen" ] && nix-env -p "$profile" --delete-generations "$newgen"
      [ -n "$ok" ]
    else
      "$prev/bin/switch-to-configuration" "$goal" </dev/null
    fi
    echo "exit $?"
  } >"$dir/rolledback.tmp" 2>&1
  mv "$dir/rolledback.tmp" "$dir/rolledback"
  exit 0
fi
finish
`

// collectScript waits for the runner of an activation whose session was
// lost (a dropped connection, an interrupt) and reports its result as
// ActivateScript does. Argument: state dir.
const collectScript = `dir=$1
[ -e "$dir/started" ] || { echo "no activation started in $dir" >&2; exit 112; }
flock "$dir/busy" true || exit 111
[ -e "$dir/result" ] || { echo "the activation in $dir ended without a result" >&2; exit 113; }
tail -c 65536 "$dir/log" >&2
cat "$dir/result"
`

// confirmScript confirms a new system, unless the runner already
// decided to roll back (exit 1), and wakes the runner. Argument: state
// dir.
const confirmScript = `mkdir "$1/decided" 2>/dev/null && : >"$1/confirmed" && { kill "$(cat "$1/sleep.pid")" 2>/dev/null; true; }`

// outcomeScript waits for the runner to end its dead-man window and
// prints what the host recorded: "confirmed", or "rolledback" and the
// rollback's report, or "undecided"; then the current system. Argument:
// state dir.
const outcomeScript = `dir=$1
[ -e "$dir/started" ] || exit 112
flock "$dir/alive" true || exit 111
if [ -e "$dir/confirmed" ]; then echo confirmed; elif [ -e "$dir/rolledback" ]; then echo rolledback; else echo undecided; fi
readlink /run/current-system || echo
cat "$dir/rolledback" 2>/dev/null
true
`

// previousScript prints what the host ran before this run's first
// activation, as the runner recorded it. Argument: state dir.
const previousScript = `cat "$1/previous" 2>/dev/null || true`
