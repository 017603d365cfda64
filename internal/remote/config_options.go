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

// hostName sets Address: HostName (only %h and %% are allowed, as in ssh;
// ssh -G has expanded it, and canonicalised the name), else the Target's
// Host.
func (h *hostConfig) hostName(e *Endpoint) error {
	e.Address = h.t.Host
	v := h.get("HostName")
	if v == "" {
		return nil
	}
	if h.ssh {
		e.Address = v
		return nil
	}
	a, err := expandTokens(v, map[byte]string{'h': h.t.Host})
	if err != nil {
		return h.errorf("HostName: %v", err)
	}
	e.Address = a
	return nil
}

// user sets User: the Target's (which the sources apply as ssh -l), then
// the config's, then root.
func (h *hostConfig) user(e *Endpoint) error {
	e.User = h.get("User")
	if e.User == "" {
		e.User = "root"
	}
	return nil
}

// port sets Port: the Target's (as ssh -p), then the config's, then 22.
func (h *hostConfig) port(e *Endpoint) error {
	e.Port = 22
	if v := h.get("Port"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			return h.errorf("Port %q is not a port number", v)
		}
		e.Port = p
	}
	return nil
}

// proxy sets ProxyCommand, its tokens expanded, and keeps ProxyJump's
// value for resolveChain; the sources keep only the first of the two.
func (h *hostConfig) proxy(e *Endpoint) error {
	if v := h.get("ProxyCommand"); v != "" && !strings.EqualFold(v, "none") {
		c, err := h.env.expand(v, h.tokens(e))
		if err != nil {
			return h.errorf("ProxyCommand %q: %v", v, err)
		}
		e.ProxyCommand = c
		return nil
	}
	if v := h.get("ProxyJump"); v != "" && !strings.EqualFold(v, "none") {
		h.proxyJump = v
	}
	return nil
}

// hostKeyAlias sets HostKeyAlias.
func (h *hostConfig) hostKeyAlias(e *Endpoint) error {
	e.HostKeyAlias = h.get("HostKeyAlias")
	return nil
}

// defaultIdentities are ssh's identity files, in its order, used when the
// config names none (ssh -G lists them itself).
var defaultIdentities = []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"}

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
	cfgIDs := h.getAll("IdentityFile")
	if len(cfgIDs) == 0 && !h.ssh {
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
	for _, f := range h.getAll("CertificateFile") {
		if strings.EqualFold(f, "none") {
			continue
		}
		p, err := h.path(e, f)
		if err != nil {
			return h.errorf("CertificateFile %q: %v", f, err)
		}
		e.CertificateFiles = append(e.CertificateFiles, p)
	}
	e.CertificateFiles = dedup(e.CertificateFiles)
	var err error
	e.IdentitiesOnly, err = h.getBool("IdentitiesOnly")
	return err
}

// agent sets AgentSocket: IdentityAgent (none, SSH_AUTH_SOCK, $VAR or a
// path), else $SSH_AUTH_SOCK.
func (h *hostConfig) agent(e *Endpoint) error {
	e.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	v := h.get("IdentityAgent")
	if v == "" {
		return nil
	}
	var err error
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
	case !set || (h.ssh && d == 0):
		// ssh -G prints 0 when unset: fleet keeps its keepalives then.
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
// config's, else 1 as in ssh.
func (h *hostConfig) connectionAttempts(e *Endpoint) error {
	e.ConnectionAttempts = h.o.ConnectionAttempts
	if e.ConnectionAttempts > 0 {
		return nil
	}
	n, err := h.getPositive("ConnectionAttempts")
	e.ConnectionAttempts = max(n, 1)
	return err
}

// bindAddress sets BindAddress, the local address to connect from.
func (h *hostConfig) bindAddress(e *Endpoint) error {
	e.BindAddress = h.get("BindAddress")
	return nil
}
