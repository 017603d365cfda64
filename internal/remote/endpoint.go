package remote

// This file holds Endpoint, the meeting point of Resolve and Dial: what
// ssh_config says about one host, and the defaults Dial fills in for
// anything left zero (tests and callers may build an Endpoint directly).

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Endpoint is everything Dial needs to reach one host: a Target with
// ssh_config applied. Resolve fills it; tests may build one directly.
type Endpoint struct {
	Host    string // the name as given in the Target (what Host patterns matched)
	Address string // where to connect: ssh_config HostName, else Host
	User    string
	Port    int

	// IdentityFiles are the private key files to try after the agent's
	// keys. Missing files are skipped.
	IdentityFiles []string
	// CertificateFiles are user certificates (CertificateFile) offered
	// with the matching private key, from IdentityFiles or the agent.
	CertificateFiles []string
	// IdentitiesOnly restricts the agent's keys to those of IdentityFiles
	// (a file may be a public key whose private key is in the agent).
	IdentitiesOnly bool
	// AgentSocket is the ssh-agent socket ("" = no agent): IdentityAgent,
	// else $SSH_AUTH_SOCK.
	AgentSocket string

	// KnownHostsFiles are the user known_hosts files; accept-new records
	// into the first one.
	KnownHostsFiles []string
	// GlobalKnownHostsFiles are read too, never written.
	GlobalKnownHostsFiles []string
	// Jumps are the jump hosts (ssh_config ProxyJump) in the order they are
	// connected to: Jumps[0] directly, each next one (and finally this
	// endpoint) through a direct-tcpip channel of the one before. A jump
	// host's own Jumps are ignored.
	Jumps []Endpoint
	// ProxyCommand, when set (ssh_config ProxyCommand, tokens expanded),
	// is run with /bin/sh -c and its stdin and stdout are the connection,
	// instead of a TCP connection; with Jumps, it reaches Jumps[0].
	ProxyCommand string
	// BindAddress is the local address to connect from ("" any).
	BindAddress string

	// HostKeyAlias, when set, is the name looked up in known_hosts instead
	// of Address.
	HostKeyAlias string
	// HashKnownHosts makes accept-new record a hashed host name.
	HashKnownHosts bool
	// StrictHostKeyChecking is "yes" (the default when empty) or
	// "accept-new".
	StrictHostKeyChecking string

	ConnectTimeout time.Duration // 0 means 10s
	// ConnectionAttempts is how many times Dial tries (0 means 3; Resolve
	// sets ssh's default, 1), with an
	// exponential backoff in between, when connecting fails in a way worth
	// retrying; see Dial.
	ConnectionAttempts int
	// ServerAliveInterval is the keepalive period: 0 means 15s, negative
	// disables keepalives. After ServerAliveCountMax (0 means 3) unanswered
	// keepalives the connection is declared lost.
	ServerAliveInterval time.Duration
	ServerAliveCountMax int
	// MaxSessions is the number of sessions the server allows on one
	// connection (0 means 10, OpenSSH sshd's default MaxSessions). Run keeps
	// one of them spare, for stopping cancelled commands, so at most
	// MaxSessions-1 commands run at once; further Runs wait for a slot. If
	// the server refuses sessions earlier, the limit is lowered.
	MaxSessions int

	// SudoPassword, when non-nil, makes Cmd.Sudo commands of a non-root
	// User run `sudo -S` and answer its prompt with it; nil runs `sudo -n`.
	SudoPassword Secret
}

const (
	defaultConnectTimeout = 10 * time.Second
	defaultAliveInterval  = 15 * time.Second
	defaultAliveCountMax  = 3
	defaultMaxSessions    = 10
	defaultConnAttempts   = 3
	strictYes             = "yes"
	strictAcceptNew       = "accept-new"
)

// String returns "user@address:port".
func (e Endpoint) String() string {
	return e.User + "@" + net.JoinHostPort(e.Address, strconv.Itoa(e.Port))
}

// Route is the endpoint as messages show it: "user@address:port", then
// " via jump1,jump2" or " via ProxyCommand …".
func (e Endpoint) Route() string {
	s := e.String()
	var via []string
	for _, j := range e.Jumps {
		via = append(via, j.name())
	}
	switch {
	case len(via) > 0:
		s += " via " + strings.Join(via, ",")
		if e.Jumps[0].ProxyCommand != "" {
			s += " (first through ProxyCommand " + e.Jumps[0].ProxyCommand + ")"
		}
	case e.ProxyCommand != "":
		s += " via ProxyCommand " + e.ProxyCommand
	}
	return s
}

// name is how errors call the host: its Host, else its Address.
func (e Endpoint) name() string {
	if e.Host != "" {
		return e.Host
	}
	return e.Address
}

// knownHostsAddr is the name under which the host key is looked up and
// recorded, in the "host:port" form knownhosts wants: Address and Port, or
// HostKeyAlias alone (ssh does not add the port to an alias).
func (e Endpoint) knownHostsAddr() string {
	if e.HostKeyAlias != "" {
		return net.JoinHostPort(e.HostKeyAlias, "22")
	}
	return net.JoinHostPort(e.Address, strconv.Itoa(e.Port))
}

// withDefaults fills in what e leaves zero and checks what it sets.
func withDefaults(e Endpoint) (Endpoint, error) {
	if e.Address == "" {
		e.Address = e.Host
	}
	if e.Address == "" {
		return e, errors.New("remote: endpoint has no address")
	}
	if e.Host == "" {
		e.Host = e.Address
	}
	if e.User == "" {
		e.User = "root"
	}
	if e.Port == 0 {
		e.Port = 22
	}
	if e.Port < 0 || e.Port > 65535 {
		return e, fmt.Errorf("remote: %s: invalid port %d", e.Host, e.Port)
	}
	switch e.StrictHostKeyChecking {
	case "":
		e.StrictHostKeyChecking = strictYes
	case strictYes, strictAcceptNew:
	default:
		return e, fmt.Errorf("remote: %s: StrictHostKeyChecking %q: want yes or accept-new", e.Host, e.StrictHostKeyChecking)
	}
	if e.ConnectTimeout <= 0 {
		e.ConnectTimeout = defaultConnectTimeout
	}
	if e.ServerAliveInterval == 0 {
		e.ServerAliveInterval = defaultAliveInterval
	}
	if e.ServerAliveCountMax <= 0 {
		e.ServerAliveCountMax = defaultAliveCountMax
	}
	if e.MaxSessions <= 0 {
		e.MaxSessions = defaultMaxSessions
	}
	if e.ConnectionAttempts <= 0 {
		e.ConnectionAttempts = defaultConnAttempts
	}
	return e, nil
}
