package remote

// This file is Resolve: from a Target and the run's Options to an
// Endpoint, by way of ssh_config. The steps are split by concern:
// config_files.go reads (and caches) the files, config_options.go applies
// the options, one function per option or group, all called from the
// table below, config_knownhosts.go the known_hosts and host key options,
// config_jump.go follows ProxyJump, config_paths.go expands ~ and %
// tokens.

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Options are the settings of a whole run that apply to every host.
type Options struct {
	// ConfigFiles are the ssh_config files to read, in order: for each
	// keyword the first value obtained wins, as with ssh. nil means the
	// defaults, ~/.ssh/config then /etc/ssh/ssh_config, either of which may be
	// missing; a non-nil slice is used as is (an empty one reads no config),
	// and a file in it that does not exist is an error.
	ConfigFiles []string
	// KnownHostsFiles, when non-empty, replaces UserKnownHostsFile.
	KnownHostsFiles []string
	// StrictHostKeyChecking is "yes" or "accept-new"; "" takes it from the
	// config, defaulting to "yes". "no" is not offered: a changed host key is
	// always refused.
	StrictHostKeyChecking string
	// ConnectTimeout bounds the TCP connect and the SSH handshake; 0 takes
	// the config's ConnectTimeout, else 10s.
	ConnectTimeout time.Duration
	// IdentityFiles are extra identities, tried before those of the config.
	IdentityFiles []string
	// ConnectionAttempts is how many times Dial tries to connect before
	// giving up, when connecting fails in a way worth retrying (refused,
	// reset, timed out); 0 takes the config's ConnectionAttempts, else 3.
	ConnectionAttempts int
	// SudoPassword, when non-nil, is typed to sudo for Cmd.Sudo commands of
	// non-root users (`sudo -S`) instead of running `sudo -n`. It applies to
	// the target host, never to jump hosts, and is never printed.
	SudoPassword Secret
}

// Target is a host as fleet.star names it. Non-empty / non-zero fields win
// over ssh_config, as `ssh -l USER -p PORT HOST` would.
type Target struct {
	Host string // ssh_config alias or address
	User string // default: config User, else root
	Port int    // default: config Port, else 22
}

// Resolve applies ssh_config to a target: HostName, User, Port,
// IdentityFile, IdentitiesOnly, IdentityAgent, UserKnownHostsFile,
// GlobalKnownHostsFile, HostKeyAlias, HashKnownHosts, StrictHostKeyChecking,
// ConnectTimeout, ConnectionAttempts, ServerAliveInterval,
// ServerAliveCountMax and ProxyJump.
//
// ProxyJump ("host1,user@host2:port", or "none") fills Endpoint.Jumps, as
// ssh does: every jump host is resolved through the same ssh_config and
// Options, the first one's own ProxyJump is honoured (recursively), the
// later ones' are not (ssh passes them -J). A jump list that comes back to
// a host it is resolving is an error naming the loop. ProxyCommand is not
// supported and is reported as an error rather than ignored.
//
// Each config file is parsed once per process (again only once it has
// changed), so Resolve may be called for every connection. It is safe for
// concurrent use.
func Resolve(o Options, t Target) (Endpoint, error) {
	env := newLocalEnv()
	cfg, err := loadConfig(o.ConfigFiles, env)
	if err != nil {
		return Endpoint{}, err
	}
	e, err := resolveChain(o, cfg, env, t, nil)
	if err != nil {
		return Endpoint{}, err
	}
	e.SudoPassword = o.SudoPassword
	return e, nil
}

// hostConfig is what applies to one host: the run's Options and the
// ssh_config values for its name. Every option is applied through it.
type hostConfig struct {
	o   Options
	cfg *sshConfig
	env *localEnv
	t   Target

	proxyJump string // ProxyJump's value, "" for none; set by proxy
}

// options are the steps of resolveOne, in order; each fills in some of
// the Endpoint. Later steps see what earlier ones set: file names may use
// the address, port, user and HostKeyAlias (see tokens).
var options = []func(*hostConfig, *Endpoint) error{
	(*hostConfig).hostName,
	(*hostConfig).user,
	(*hostConfig).port,
	(*hostConfig).proxy,
	(*hostConfig).hostKeyAlias,
	(*hostConfig).identities,
	(*hostConfig).agent,
	(*hostConfig).knownHosts,
	(*hostConfig).strictHostKeyChecking,
	(*hostConfig).timeouts,
	(*hostConfig).connectionAttempts,
}

// resolveOne applies ssh_config to t alone; it returns the ProxyJump value
// ("" for none) without following it.
func resolveOne(o Options, cfg *sshConfig, env *localEnv, t Target) (Endpoint, string, error) {
	if t.Host == "" {
		return Endpoint{}, "", errors.New("remote: empty host")
	}
	if t.Port < 0 || t.Port > 65535 {
		return Endpoint{}, "", fmt.Errorf("remote: %s: invalid port %d", t.Host, t.Port)
	}
	h := &hostConfig{o: o, cfg: cfg, env: env, t: t}
	e := Endpoint{Host: t.Host}
	for _, apply := range options {
		if err := apply(h, &e); err != nil {
			return Endpoint{}, "", err
		}
	}
	return e, h.proxyJump, nil
}

// errorf is an error in the host's ssh_config.
func (h *hostConfig) errorf(format string, args ...any) error {
	return fmt.Errorf("remote: ssh_config for %s: "+format, append([]any{h.t.Host}, args...)...)
}

// get returns the first value of key for the host, "" if none.
func (h *hostConfig) get(key string) (string, error) {
	v, err := h.cfg.get(h.t.Host, key)
	if err != nil {
		return "", h.errorf("%w", err)
	}
	return v, nil
}

// getAll returns every value of key for the host, in order.
func (h *hostConfig) getAll(key string) ([]string, error) {
	v, err := h.cfg.getAll(h.t.Host, key)
	if err != nil {
		return nil, h.errorf("%w", err)
	}
	return v, nil
}

// getBool reads a yes/no keyword, false when unset.
func (h *hostConfig) getBool(key string) (bool, error) {
	v, err := h.cfg.getBool(h.t.Host, key)
	if err != nil {
		return false, h.errorf("%w", err)
	}
	return v, nil
}

// getSeconds reads a duration keyword; set reports whether it is set.
func (h *hostConfig) getSeconds(key string) (d time.Duration, set bool, err error) {
	d, set, err = h.cfg.getSeconds(h.t.Host, key)
	if err != nil {
		return 0, false, h.errorf("%w", err)
	}
	return d, set, nil
}

// getPositive reads a keyword that is a positive number, 0 when unset.
func (h *hostConfig) getPositive(key string) (int, error) {
	v, err := h.get(key)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, h.errorf("%s %q is not a positive number", key, v)
	}
	return n, nil
}

// tokens are the % tokens of ssh_config file names that depend on the
// host, as far as e is filled in.
func (h *hostConfig) tokens(e *Endpoint) map[byte]string {
	tokens := map[byte]string{
		'h': e.Address, 'n': h.t.Host, 'p': strconv.Itoa(e.Port), 'r': e.User,
		'k': h.t.Host,
	}
	if e.HostKeyAlias != "" {
		tokens['k'] = e.HostKeyAlias
	}
	return tokens
}

// path expands a file name of the host's ssh_config (or Options).
func (h *hostConfig) path(e *Endpoint, name string) (string, error) {
	return h.env.expandPath(name, h.tokens(e))
}
