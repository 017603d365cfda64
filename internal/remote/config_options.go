package remote

// This file applies the options of one host (the steps of the options
// table in config.go): for each, what wins (a Target or Options field,
// then ssh_config, then ssh's default) and how its value is checked. The
// known_hosts options are in config_knownhosts.go.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// hostName sets Address: HostName (only %h and %% are allowed, as in ssh),
// else the Target's Host.
func (h *hostConfig) hostName(e *Endpoint) error {
	e.Address = h.t.Host
	v, err := h.get("HostName")
	if err != nil || v == "" {
		return err
	}
	a, err := expandTokens(v, map[byte]string{'h': h.t.Host})
	if err != nil {
		return h.errorf("HostName: %v", err)
	}
	e.Address = a
	return nil
}

// user sets User: the Target's, then the config's, then root.
func (h *hostConfig) user(e *Endpoint) error {
	e.User = h.t.User
	if e.User == "" {
		v, err := h.get("User")
		if err != nil {
			return err
		}
		e.User = v
	}
	if e.User == "" {
		e.User = "root"
	}
	return nil
}

// port sets Port: the Target's, then the config's, then 22.
func (h *hostConfig) port(e *Endpoint) error {
	e.Port = h.t.Port
	if e.Port == 0 {
		v, err := h.get("Port")
		if err != nil {
			return err
		}
		if v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p > 65535 {
				return h.errorf("Port %q is not a port number", v)
			}
			e.Port = p
		}
	}
	if e.Port == 0 {
		e.Port = 22
	}
	return nil
}

// proxy refuses ProxyCommand, which the transport cannot honour, and
// keeps ProxyJump's value for resolveChain.
func (h *hostConfig) proxy(e *Endpoint) error {
	v, err := h.get("ProxyCommand")
	if err != nil {
		return err
	}
	if v != "" && !strings.EqualFold(v, "none") {
		return h.errorf("ProxyCommand %q is set, but fleet's SSH transport does not support ProxyCommand (ProxyJump is supported)", v)
	}
	v, err = h.get("ProxyJump")
	if err != nil {
		return err
	}
	if v != "" && !strings.EqualFold(v, "none") {
		h.proxyJump = v
	}
	return nil
}

// hostKeyAlias sets HostKeyAlias.
func (h *hostConfig) hostKeyAlias(e *Endpoint) (err error) {
	e.HostKeyAlias, err = h.get("HostKeyAlias")
	return err
}

// defaultIdentities are ssh's identity files, used when the config names
// none.
var defaultIdentities = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// identities sets IdentityFiles, Options' first, then the config's (ssh's
// defaults only if the config names none), and IdentitiesOnly.
func (h *hostConfig) identities(e *Endpoint) error {
	for _, f := range h.o.IdentityFiles {
		p, err := h.path(e, f)
		if err != nil {
			return fmt.Errorf("remote: identity file %q: %v", f, err)
		}
		e.IdentityFiles = append(e.IdentityFiles, p)
	}
	cfgIDs, err := h.getAll("IdentityFile")
	if err != nil {
		return err
	}
	if len(cfgIDs) == 0 {
		for _, n := range defaultIdentities {
			p, err := h.path(e, "~/.ssh/"+n)
			if err != nil {
				return h.errorf("default identity: %v", err)
			}
			e.IdentityFiles = append(e.IdentityFiles, p)
		}
	}
	for _, f := range cfgIDs {
		if strings.EqualFold(f, "none") {
			continue
		}
		p, err := h.path(e, f)
		if err != nil {
			return h.errorf("IdentityFile %q: %v", f, err)
		}
		e.IdentityFiles = append(e.IdentityFiles, p)
	}
	e.IdentityFiles = dedup(e.IdentityFiles)
	e.IdentitiesOnly, err = h.getBool("IdentitiesOnly")
	return err
}

// agent sets AgentSocket: IdentityAgent (none, SSH_AUTH_SOCK, $VAR or a
// path), else $SSH_AUTH_SOCK.
func (h *hostConfig) agent(e *Endpoint) error {
	e.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	v, err := h.get("IdentityAgent")
	if err != nil || v == "" {
		return err
	}
	switch {
	case strings.EqualFold(v, "none"):
		e.AgentSocket = ""
	case v == "SSH_AUTH_SOCK":
	case strings.HasPrefix(v, "$"):
		e.AgentSocket = os.Getenv(strings.Trim(v[1:], "{}"))
	default:
		if e.AgentSocket, err = h.path(e, v); err != nil {
			return h.errorf("IdentityAgent %q: %v", v, err)
		}
	}
	return nil
}

// timeouts sets ConnectTimeout (Options', then the config's, then 10s),
// ServerAliveInterval (0 in the config disables keepalives, as in ssh),
// ServerAliveCountMax and MaxSessions.
func (h *hostConfig) timeouts(e *Endpoint) error {
	e.ConnectTimeout = h.o.ConnectTimeout
	if e.ConnectTimeout <= 0 {
		d, set, err := h.getSeconds("ConnectTimeout")
		if err != nil {
			return err
		}
		e.ConnectTimeout = defaultConnectTimeout
		if set && d > 0 {
			e.ConnectTimeout = d
		}
	}
	d, set, err := h.getSeconds("ServerAliveInterval")
	if err != nil {
		return err
	}
	switch {
	case !set:
		e.ServerAliveInterval = defaultAliveInterval
	case d == 0:
		e.ServerAliveInterval = -1 // ServerAliveInterval 0: disabled, as in ssh
	default:
		e.ServerAliveInterval = d
	}
	if e.ServerAliveCountMax, err = h.getPositive("ServerAliveCountMax"); err != nil {
		return err
	}
	if e.ServerAliveCountMax == 0 {
		e.ServerAliveCountMax = defaultAliveCountMax
	}
	e.MaxSessions = defaultMaxSessions
	return nil
}

// connectionAttempts sets ConnectionAttempts: Options', then the
// config's; else 0, which Dial takes as defaultConnAttempts.
func (h *hostConfig) connectionAttempts(e *Endpoint) error {
	e.ConnectionAttempts = h.o.ConnectionAttempts
	if e.ConnectionAttempts > 0 {
		return nil
	}
	n, err := h.getPositive("ConnectionAttempts")
	if n > 0 {
		e.ConnectionAttempts = n
	}
	return err
}
