package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
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
	// IdentitiesOnly restricts the agent's keys to those of IdentityFiles.
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

	// HostKeyAlias, when set, is the name looked up in known_hosts instead
	// of Address.
	HostKeyAlias string
	// HashKnownHosts makes accept-new record a hashed host name.
	HashKnownHosts bool
	// StrictHostKeyChecking is "yes" (the default when empty) or
	// "accept-new".
	StrictHostKeyChecking string

	ConnectTimeout time.Duration // 0 means 10s
	// ConnectionAttempts is how many times Dial tries (0 means 3), with an
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

// String returns "user@address:port".
func (e Endpoint) String() string {
	return e.User + "@" + net.JoinHostPort(e.Address, strconv.Itoa(e.Port))
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

const (
	defaultConnectTimeout    = 10 * time.Second
	defaultAliveInterval     = 15 * time.Second
	defaultAliveCountMax     = 3
	defaultMaxSessions       = 10
	defaultConnAttempts      = 3
	maxJumps                 = 16
	strictYes                = "yes"
	strictAcceptNew          = "accept-new"
	systemSSHConfig          = "/etc/ssh/ssh_config"
	defaultGlobalKnownHosts  = "/etc/ssh/ssh_known_hosts"
	defaultGlobalKnownHosts2 = "/etc/ssh/ssh_known_hosts2"
)

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

// resolveChain resolves t and, through its ProxyJump, its jump hosts.
// stack holds the (lower-cased) names being resolved, outermost first.
func resolveChain(o Options, cfg *sshConfig, env *localEnv, t Target, stack []string) (Endpoint, error) {
	e, proxyJump, err := resolveOne(o, cfg, env, t)
	if err != nil || proxyJump == "" {
		return e, err
	}
	hops, err := parseProxyJump(proxyJump)
	if err != nil {
		return Endpoint{}, fmt.Errorf("remote: ssh_config for %s: ProxyJump %q: %v", t.Host, proxyJump, err)
	}
	stack = append(stack, strings.ToLower(t.Host))
	for _, s := range stack {
		if s == strings.ToLower(hops[0].Host) {
			path := append(append([]string(nil), stack...), hops[0].Host)
			return Endpoint{}, fmt.Errorf("remote: ssh_config: ProxyJump loop: %s (a jump host must not need itself to be reached; give it `ProxyJump none`)",
				strings.Join(path, " -> "))
		}
	}
	first, err := resolveChain(o, cfg, env, hops[0], stack)
	if err != nil {
		return Endpoint{}, err
	}
	jumps := append(first.Jumps, first)
	jumps[len(jumps)-1].Jumps = nil
	for _, h := range hops[1:] {
		j, _, err := resolveOne(o, cfg, env, h)
		if err != nil {
			return Endpoint{}, err
		}
		jumps = append(jumps, j)
	}
	if len(jumps) > maxJumps {
		return Endpoint{}, fmt.Errorf("remote: ssh_config for %s: more than %d jump hosts", t.Host, maxJumps)
	}
	e.Jumps = jumps
	return e, nil
}

// parseProxyJump splits a ProxyJump value into targets:
// [user@]host[:port] or ssh://[user@]host[:port], comma-separated.
func parseProxyJump(v string) ([]Target, error) {
	var out []Target
	for _, h := range strings.Split(v, ",") {
		t, err := parseJumpHost(strings.TrimSpace(h))
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func parseJumpHost(s string) (Target, error) {
	orig := s
	if len(s) >= 6 && strings.EqualFold(s[:6], "ssh://") {
		s = strings.TrimSuffix(s[6:], "/")
	}
	var t Target
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		t.User, s = s[:i], s[i+1:]
		if t.User == "" {
			return t, fmt.Errorf("%q: empty user name", orig)
		}
	}
	port := ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return t, fmt.Errorf("%q: unbalanced [", orig)
		}
		rest := s[end+1:]
		s = s[1:end]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return t, fmt.Errorf("%q: unexpected %q after ]", orig, rest)
			}
			port = rest[1:]
		}
	case strings.Count(s, ":") == 1:
		s, port, _ = strings.Cut(s, ":")
	}
	if s == "" || strings.ContainsAny(s, " \t/") {
		return t, fmt.Errorf("%q: not a [user@]host[:port]", orig)
	}
	t.Host = s
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return t, fmt.Errorf("%q: invalid port %q", orig, port)
		}
		t.Port = p
	}
	return t, nil
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
	var proxyJump string
	fail := func(format string, args ...any) (Endpoint, string, error) {
		return Endpoint{}, "", fmt.Errorf("remote: ssh_config for %s: "+format, append([]any{t.Host}, args...)...)
	}
	get := func(key string) (string, error) { return cfg.get(t.Host, key) }

	e := Endpoint{Host: t.Host}

	// HostName (only %h and %% are allowed, as in ssh).
	e.Address = t.Host
	if v, err := get("HostName"); err != nil {
		return fail("%v", err)
	} else if v != "" {
		a, err := expandTokens(v, map[byte]string{'h': t.Host})
		if err != nil {
			return fail("HostName: %v", err)
		}
		e.Address = a
	}

	// User: Target, then config, then root.
	e.User = t.User
	if e.User == "" {
		if v, err := get("User"); err != nil {
			return fail("%v", err)
		} else {
			e.User = v
		}
	}
	if e.User == "" {
		e.User = "root"
	}

	// Port: Target, then config, then 22.
	e.Port = t.Port
	if e.Port == 0 {
		v, err := get("Port")
		if err != nil {
			return fail("%v", err)
		}
		if v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p > 65535 {
				return fail("Port %q is not a port number", v)
			}
			e.Port = p
		}
	}
	if e.Port == 0 {
		e.Port = 22
	}

	if v, err := get("ProxyCommand"); err != nil {
		return fail("%v", err)
	} else if v != "" && !strings.EqualFold(v, "none") {
		return fail("ProxyCommand %q is set, but fleet's SSH transport does not support ProxyCommand (ProxyJump is supported)", v)
	}
	if v, err := get("ProxyJump"); err != nil {
		return fail("%v", err)
	} else if v != "" && !strings.EqualFold(v, "none") {
		proxyJump = v
	}

	if v, err := get("HostKeyAlias"); err != nil {
		return fail("%v", err)
	} else {
		e.HostKeyAlias = v
	}

	tokens := map[byte]string{
		'h': e.Address, 'n': t.Host, 'p': strconv.Itoa(e.Port), 'r': e.User,
		'k': t.Host,
	}
	if e.HostKeyAlias != "" {
		tokens['k'] = e.HostKeyAlias
	}
	path := func(v string) (string, error) {
		return env.expandPath(v, tokens)
	}

	// Identities: Options first, then config; ssh's defaults only if the
	// config names none.
	for _, f := range o.IdentityFiles {
		p, err := env.expandPath(f, tokens)
		if err != nil {
			return Endpoint{}, "", fmt.Errorf("remote: identity file %q: %v", f, err)
		}
		e.IdentityFiles = append(e.IdentityFiles, p)
	}
	cfgIDs, err := cfg.getAll(t.Host, "IdentityFile")
	if err != nil {
		return fail("%v", err)
	}
	if len(cfgIDs) == 0 {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			p, err := path("~/.ssh/" + n)
			if err != nil {
				return fail("default identity: %v", err)
			}
			e.IdentityFiles = append(e.IdentityFiles, p)
		}
	}
	for _, f := range cfgIDs {
		if strings.EqualFold(f, "none") {
			continue
		}
		p, err := path(f)
		if err != nil {
			return fail("IdentityFile %q: %v", f, err)
		}
		e.IdentityFiles = append(e.IdentityFiles, p)
	}
	e.IdentityFiles = dedup(e.IdentityFiles)

	if e.IdentitiesOnly, err = cfg.getBool(t.Host, "IdentitiesOnly"); err != nil {
		return fail("%v", err)
	}

	// Agent.
	agentSock := os.Getenv("SSH_AUTH_SOCK")
	if v, err := get("IdentityAgent"); err != nil {
		return fail("%v", err)
	} else if v != "" {
		switch {
		case strings.EqualFold(v, "none"):
			agentSock = ""
		case v == "SSH_AUTH_SOCK":
		case strings.HasPrefix(v, "$"):
			agentSock = os.Getenv(strings.Trim(v[1:], "{}"))
		default:
			if agentSock, err = path(v); err != nil {
				return fail("IdentityAgent %q: %v", v, err)
			}
		}
	}
	e.AgentSocket = agentSock

	// Known hosts.
	if len(o.KnownHostsFiles) > 0 {
		for _, f := range o.KnownHostsFiles {
			p, err := env.expandPath(f, tokens)
			if err != nil {
				return Endpoint{}, "", fmt.Errorf("remote: known_hosts file %q: %v", f, err)
			}
			e.KnownHostsFiles = append(e.KnownHostsFiles, p)
		}
	} else {
		v, err := get("UserKnownHostsFile")
		if err != nil {
			return fail("%v", err)
		}
		if v == "" {
			v = "~/.ssh/known_hosts ~/.ssh/known_hosts2"
		}
		if e.KnownHostsFiles, err = pathList(v, path); err != nil {
			return fail("UserKnownHostsFile: %v", err)
		}
	}
	if v, err := get("GlobalKnownHostsFile"); err != nil {
		return fail("%v", err)
	} else {
		if v == "" {
			v = defaultGlobalKnownHosts + " " + defaultGlobalKnownHosts2
		}
		if e.GlobalKnownHostsFiles, err = pathList(v, path); err != nil {
			return fail("GlobalKnownHostsFile: %v", err)
		}
	}
	if e.HashKnownHosts, err = cfg.getBool(t.Host, "HashKnownHosts"); err != nil {
		return fail("%v", err)
	}

	// StrictHostKeyChecking.
	switch strings.ToLower(o.StrictHostKeyChecking) {
	case "":
		v, err := get("StrictHostKeyChecking")
		if err != nil {
			return fail("%v", err)
		}
		switch strings.ToLower(v) {
		case "", "yes", "ask", "true":
			e.StrictHostKeyChecking = strictYes
		case "accept-new":
			e.StrictHostKeyChecking = strictAcceptNew
		case "no", "off", "false":
			// ssh would record unknown keys and connect despite a changed
			// one; fleet keeps the first half only.
			e.StrictHostKeyChecking = strictAcceptNew
		default:
			return fail("StrictHostKeyChecking %q is not yes, accept-new, ask or no", v)
		}
	case "yes":
		e.StrictHostKeyChecking = strictYes
	case "accept-new":
		e.StrictHostKeyChecking = strictAcceptNew
	case "no", "off":
		return Endpoint{}, "", fmt.Errorf("remote: StrictHostKeyChecking=%s is not supported (a changed host key is always refused); use accept-new to record unknown hosts", o.StrictHostKeyChecking)
	default:
		return Endpoint{}, "", fmt.Errorf("remote: StrictHostKeyChecking %q: want yes or accept-new", o.StrictHostKeyChecking)
	}

	// Timeouts.
	e.ConnectTimeout = o.ConnectTimeout
	if e.ConnectTimeout <= 0 {
		d, set, err := cfg.getSeconds(t.Host, "ConnectTimeout")
		if err != nil {
			return fail("%v", err)
		}
		e.ConnectTimeout = defaultConnectTimeout
		if set && d > 0 {
			e.ConnectTimeout = d
		}
	}
	d, set, err := cfg.getSeconds(t.Host, "ServerAliveInterval")
	if err != nil {
		return fail("%v", err)
	}
	switch {
	case !set:
		e.ServerAliveInterval = defaultAliveInterval
	case d == 0:
		e.ServerAliveInterval = -1 // ServerAliveInterval 0: disabled, as in ssh
	default:
		e.ServerAliveInterval = d
	}
	if v, err := get("ServerAliveCountMax"); err != nil {
		return fail("%v", err)
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fail("ServerAliveCountMax %q is not a positive number", v)
		}
		e.ServerAliveCountMax = n
	} else {
		e.ServerAliveCountMax = defaultAliveCountMax
	}
	e.MaxSessions = defaultMaxSessions

	e.ConnectionAttempts = o.ConnectionAttempts
	if e.ConnectionAttempts <= 0 {
		if v, err := get("ConnectionAttempts"); err != nil {
			return fail("%v", err)
		} else if v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fail("ConnectionAttempts %q is not a positive number", v)
			}
			e.ConnectionAttempts = n
		}
		// else 0: Dial's default, defaultConnAttempts
	}
	return e, proxyJump, nil
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func pathList(v string, expand func(string) (string, error)) ([]string, error) {
	var out []string
	for _, f := range strings.Fields(v) {
		if strings.EqualFold(f, "none") {
			continue
		}
		p, err := expand(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// sshConfig is a list of parsed ssh_config files; the first value obtained
// for a keyword wins.
type sshConfig struct {
	names []string
	files []*ssh_config.Config
}

func loadConfig(files []string, env *localEnv) (*sshConfig, error) {
	explicit := files != nil
	if !explicit {
		home, err := env.homeDir()
		if err == nil {
			files = append(files, filepath.Join(home, ".ssh", "config"))
		}
		files = append(files, systemSSHConfig)
	}
	c := &sshConfig{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			if !explicit && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("remote: ssh_config: %w", err)
		}
		cfg, err := ssh_config.DecodeBytes(b)
		if err != nil {
			return nil, fmt.Errorf("remote: ssh_config %s: %w", name, err)
		}
		c.names = append(c.names, name)
		c.files = append(c.files, cfg)
	}
	return c, nil
}

func (c *sshConfig) get(alias, key string) (string, error) {
	for i, f := range c.files {
		v, err := f.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", c.names[i], key, err)
		}
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}

func (c *sshConfig) getAll(alias, key string) ([]string, error) {
	var out []string
	for i, f := range c.files {
		v, err := f.GetAll(alias, key)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", c.names[i], key, err)
		}
		out = append(out, v...)
	}
	return out, nil
}

func (c *sshConfig) getBool(alias, key string) (bool, error) {
	v, err := c.get(alias, key)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(v) {
	case "", "no", "false":
		return false, nil
	case "yes", "true":
		return true, nil
	}
	return false, fmt.Errorf("%s %q: want yes or no", key, v)
}

// getSeconds reads a duration in seconds (ssh also accepts time formats
// like 1m30s for some keywords; plain seconds and Go-style units are taken).
func (c *sshConfig) getSeconds(alias, key string) (time.Duration, bool, error) {
	v, err := c.get(alias, key)
	if err != nil || v == "" {
		return 0, false, err
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true, nil
	}
	if d, err := time.ParseDuration(strings.ToLower(v)); err == nil && d >= 0 {
		return d, true, nil
	}
	return 0, false, fmt.Errorf("%s %q is not a number of seconds", key, v)
}

// localEnv answers questions about the local user lazily.
type localEnv struct {
	home    string
	homeErr error
	done    bool
}

func newLocalEnv() *localEnv { return &localEnv{} }

// homeDir is $HOME, or the passwd database's entry when $HOME is unset.
func (l *localEnv) homeDir() (string, error) {
	if !l.done {
		l.done = true
		l.home = os.Getenv("HOME")
		if l.home == "" {
			u, err := user.Current()
			if err != nil {
				l.homeErr = fmt.Errorf("$HOME is unset and the passwd database has no entry: %w", err)
			} else if u.HomeDir == "" {
				l.homeErr = errors.New("$HOME is unset and the passwd entry has no home directory")
			} else {
				l.home = u.HomeDir
			}
		}
	}
	return l.home, l.homeErr
}

// expandPath expands a leading ~ or ~user and the % tokens of ssh_config
// file names (%d, %u, %i, %l, %L, plus those in tokens).
func (l *localEnv) expandPath(p string, tokens map[byte]string) (string, error) {
	all := map[byte]string{}
	for k, v := range tokens {
		all[k] = v
	}
	needs := func(b byte) bool { return strings.Contains(p, "%"+string(b)) }
	if needs('d') || strings.HasPrefix(p, "~") {
		home, err := l.homeDir()
		if err != nil {
			return "", err
		}
		all['d'] = home
	}
	if needs('u') || needs('i') {
		u, err := user.Current()
		if err != nil {
			return "", fmt.Errorf("local user: %w", err)
		}
		all['u'], all['i'] = u.Username, u.Uid
	}
	if needs('l') || needs('L') {
		h, err := os.Hostname()
		if err != nil {
			return "", err
		}
		all['l'] = h
		all['L'], _, _ = strings.Cut(h, ".")
	}
	if strings.HasPrefix(p, "~") {
		rest := p[1:]
		name, tail, _ := strings.Cut(rest, "/")
		base := all['d']
		if name != "" {
			u, err := user.Lookup(name)
			if err != nil {
				return "", fmt.Errorf("%s: %w", p, err)
			}
			base = u.HomeDir
		}
		if tail == "" && !strings.Contains(rest, "/") {
			p = base
		} else {
			p = filepath.Join(base, tail)
		}
	}
	return expandTokens(p, all)
}

// expandTokens replaces %% and the %X tokens given; any other token is an
// error, as in ssh.
func expandTokens(s string, tokens map[byte]string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%q ends in a lone %%", s)
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := tokens[s[i]]
		if !ok {
			return "", fmt.Errorf("%q: unsupported token %%%c", s, s[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
