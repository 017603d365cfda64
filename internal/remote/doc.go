// Package remote is fleet's SSH transport: one SSH connection per host for a
// whole run, multiplexing every remote command over it as separate sessions.
//
// Resolve applies ssh_config to a Target as OpenSSH reads it (asking
// `ssh -G` when there is an ssh binary; ProxyJump and ProxyCommand
// included), Dial connects (through jump hosts or a ProxyCommand, retrying
// what may pass, at most
// MaxConcurrentHandshakes at once; ssh-agent and identity files,
// known_hosts verification, keepalives), and Conn.Run runs one command per
// session; the command line is always built with shell.Join, so argv
// elements arrive intact. Sudo commands run `sudo -n`, or `sudo -S`
// answering its prompt with Endpoint.SudoPassword (see sudo.go).
//
// Each command is run as
//
//	/bin/sh -c 'printf '\''fleet-remote-pid %d\n'\'' "$$" >&2 && exec "$@"' sh ARGV...
//
// (all of it quoted by shell.Join): the wrapper reports the command's pid
// on stderr, where Run takes it off again, so that a cancelled command can
// be sent SIGTERM with kill(1) from a second session. OpenSSH's sshd
// ignores the SSH "signal" request for root logins, and closing the
// session does not stop a command that neither reads nor writes; without
// the pid a cancelled command would run on, and keep its sshd session (one
// of MaxSessions) until it ended by itself.
//
// One file per hop, in the order a command takes:
//
//	config*.go    Resolve: ssh_config (ssh -G, else fleet's own reader) and Options → Endpoint
//	endpoint.go   Endpoint and its defaults
//	dial.go       Dial: turns, retries, the jump chain, one handshake
//	proxycmd.go   the ProxyCommand transport
//	auth.go       the keys offered (agent, identity files, certificates)
//	hostkey.go    known_hosts verification and accept-new
//	conn.go       Conn's life: keepalives, loss, Close
//	session.go    session slots under the server's MaxSessions
//	run.go        Cmd and Run, step by step
//	stdio.go      the gates between a session and the caller's streams
//	pidwrap.go    the pid-reporting wrapper and kill(1) of a cancelled command
//	sudo.go       sudo -n / sudo -S and its errors
package remote
