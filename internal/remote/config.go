package remote

// This file is Resolve: from a Target and the run's Options to an
// Endpoint, by way of ssh_config. The steps are split by concern:
// config_sshg.go asks `ssh -G`, config_files.go is fleet's own reader
// for when there is no ssh binary, config_options.go applies
// the options, one function per option or group, all called from the
// table below, config_knownhosts.go the known_hosts and host key options,
// config_jump.go follows ProxyJump, config_paths.go expands ~ and %
// tokens.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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
	// reset, timed out); 0 takes the config's ConnectionAttempts, else 1
	// (ssh's default).
	ConnectionAttempts int
	// SSHBinary is the OpenSSH client whose `ssh -G` says what the config
	// files mean; "" looks for ssh on $PATH, "none" uses fleet's own
	// reader (also used when there is no ssh).
	SSHBinary string
	// Warn receives the config problems that do not stop the run (a Match
	// criterion fleet's own reader does not know); nil prints them to
	// stderr, each text once per process.
	Warn func(string) `json:"-"`
	// SudoPassword, when non-nil, is typed to sudo for Cmd.Sudo commands of
	// non-root users (`sudo -S`) instead of running `sudo -n`. It applies to
	// the target host, never to jump hosts, and is never printed.
	SudoPassword Secret
}

// Target is a host as fleet.star names it. Non-empty / non-zero fields win
// over ssh_config, as `ssh -l USER -p PORT HOST` would.
type Target struct {
	Host string // ssh_config alias or address
	User string // default: config User, else root (colmena's default; ssh's is the local user)
	Port int    // default: config Port, else 22
}

// Resolve applies ssh_config to a target: HostName, User, Port,
// ProxyJump, ProxyCommand, IdentityFile, CertificateFile, IdentitiesOnly,
// IdentityAgent, UserKnownHostsFile, GlobalKnownHostsFile, HostKeyAlias,
// HashKnownHosts, StrictHostKeyChecking, ConnectTimeout,
// ConnectionAttempts, BindAddress, ServerAliveInterval and
// ServerAliveCountMax.
//
// What the files say is asked of OpenSSH itself when an `ssh` binary is
// there (`ssh -G`, which does not connect: see config_sshg.go), so that
// Match, Include, CanonicalizeHostname and tokens are evaluated exactly as
// `ssh` would; without one, fleet's own reader (config_files.go) does it.
//
// ProxyJump ("host1,user@host2:port", or "none") fills Endpoint.Jumps, as
// ssh does: every jump host is resolved through the same ssh_config and
// Options, the first one's own ProxyJump (or ProxyCommand) is honoured,
// recursively, the later ones' are not (ssh passes them -J). A jump list
// that comes back to a host it is resolving is an error naming the loop.
// ProxyCommand fills Endpoint.ProxyCommand, its tokens expanded; whichever
// of the two is obtained first wins, as in ssh.
//
// It is safe for concurrent use.
func Resolve(o Options, t Target) (Endpoint, error) {
	if t.Host == "" {
		return Endpoint{}, errors.New("remote: empty host")
	}
	env := newLocalEnv()
	src, err := newSource(o, env)
	if err != nil {
		return Endpoint{}, err
	}
	defer src.close()
	e, err := resolveChain(o, src, env, t, nil)
	if err != nil {
		return Endpoint{}, err
	}
	e.SudoPassword = o.SudoPassword
	return e, nil
}

// source says what ssh_config sets for one target (given User and Port
// count as set on ssh's command line).
type source interface {
	lookup(t Target) (settings, error)
	close()
	// fromSSH reports whether the settings are ssh -G's (expanded,
	// with ssh's defaults filled in).
	fromSSH() bool
}

// newSource picks ssh -G when there is an ssh binary, else fleet's own
// reader.
//
// Which one: fleet's own reader, which reads each file once per process
// and is checked against `ssh -G` scenario by scenario (oracle_test.go),
// unless the files use what only OpenSSH does (CanonicalizeHostname, a
// Match criterion the reader does not know) — then `ssh -G`, one process
// per host. Asking ssh for every host would cost a process each: 1000
// hosts in a plan took 4.7 s instead of 0.1 s. Options.SSHBinary set to a
// path always asks that ssh; "none" never asks one.
func newSource(o Options, env *localEnv) (source, error) {
	if o.SSHBinary != "" && o.SSHBinary != "none" {
		return &sshG{bin: o.SSHBinary, o: o, env: env}, nil
	}
	files, err := loadConfig(o.ConfigFiles, env)
	if err != nil {
		return nil, err
	}
	if o.SSHBinary == "" && needsOpenSSH(files, env) {
		if bin := findSSH(o); bin != "" {
			return &sshG{bin: bin, o: o, env: env}, nil
		}
	}
	return &ownReader{files: files, env: env, warn: o.warn}, nil
}

// needsOpenSSH reports whether files, or the files they Include, use
// what only ssh itself evaluates: CanonicalizeHostname (other than "no"),
// or a Match criterion fleet's reader does not know.
func needsOpenSSH(files []*configFile, env *localEnv) bool {
	seen := map[*configFile]bool{}
	var walk func(f *configFile, depth int) bool
	walk = func(f *configFile, depth int) bool {
		if seen[f] || depth > 16 {
			return false
		}
		seen[f] = true
		for _, l := range f.lines {
			switch l.key {
			case "canonicalizehostname":
				if len(l.args) > 0 && !strings.EqualFold(l.args[0], "no") {
					return true
				}
			case "match":
				for i := 0; i < len(l.args); i++ {
					switch strings.TrimPrefix(strings.ToLower(l.args[i]), "!") {
					case "all", "canonical", "final":
					case "host", "originalhost", "user", "localuser", "exec":
						i++ // its argument
					default:
						return true
					}
				}
			case "include":
				ev := &evaluation{env: env}
				for _, name := range ev.includedFiles(l) {
					inc, err := parsedFiles.load(name)
					if err == nil && walk(inc, depth+1) {
						return true
					}
				}
			}
		}
		return false
	}
	for _, f := range files {
		if walk(f, 0) {
			return true
		}
	}
	return false
}

func (g *sshG) fromSSH() bool { return true }

// ownReader is fleet's own reading of the files.
type ownReader struct {
	files []*configFile
	env   *localEnv
	warn  func(string)
}

func (r *ownReader) lookup(t Target) (settings, error) {
	s, err := evaluate(r.files, r.env, t, r.warn)
	if err == nil && s.get("canonicalizehostname") != "" && !strings.EqualFold(s.get("canonicalizehostname"), "no") {
		r.warn(fmt.Sprintf("ssh_config for %s: CanonicalizeHostname is applied only with the ssh binary installed", t.Host))
	}
	return s, err
}
func (r *ownReader) close()        {}
func (r *ownReader) fromSSH() bool { return false }

// warnings already printed in this process: one per text, not one per host.
var warned sync.Map

// warn reports a problem of the config that does not stop the run.
func (o Options) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
		return
	}
	if _, dup := warned.LoadOrStore(msg, true); dup {
		return
	}
	fmt.Fprintf(os.Stderr, "warning: %s\n", msg)
}

// hostConfig is what applies to one host: the run's Options and the
// ssh_config values for its name. Every option is applied through it.
type hostConfig struct {
	o   Options
	s   settings
	ssh bool // s is ssh -G's
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
	(*hostConfig).hostKeyAlias,
	(*hostConfig).proxy,
	(*hostConfig).identities,
	(*hostConfig).agent,
	(*hostConfig).knownHosts,
	(*hostConfig).strictHostKeyChecking,
	(*hostConfig).timeouts,
	(*hostConfig).connectionAttempts,
	(*hostConfig).bindAddress,
}

// resolveOne applies ssh_config to t alone; it returns the ProxyJump value
// ("" for none) without following it.
func resolveOne(o Options, src source, env *localEnv, t Target) (Endpoint, string, error) {
	if t.Host == "" {
		return Endpoint{}, "", errors.New("remote: empty host")
	}
	if t.Port < 0 || t.Port > 65535 {
		return Endpoint{}, "", fmt.Errorf("remote: %s: invalid port %d", t.Host, t.Port)
	}
	s, err := src.lookup(t)
	if err != nil {
		return Endpoint{}, "", err
	}
	h := &hostConfig{o: o, s: s, ssh: src.fromSSH(), env: env, t: t}
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
func (h *hostConfig) get(key string) string { return h.s.get(strings.ToLower(key)) }

// getAll returns every value of key for the host, in order.
func (h *hostConfig) getAll(key string) []string { return h.s[strings.ToLower(key)] }

// getBool reads a yes/no keyword, false when unset.
func (h *hostConfig) getBool(key string) (bool, error) {
	switch v := h.get(key); strings.ToLower(v) {
	case "", "no", "false":
		return false, nil
	case "yes", "true":
		return true, nil
	default:
		return false, h.errorf("%s %q: want yes or no", key, v)
	}
}

// getSeconds reads a duration keyword; set reports whether it is set
// ("none", as ssh -G prints an unset ConnectTimeout, is not). Plain
// seconds and ssh's time formats (1m30s) are taken.
func (h *hostConfig) getSeconds(key string) (d time.Duration, set bool, err error) {
	v := h.get(key)
	if v == "" || strings.EqualFold(v, "none") {
		return 0, false, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true, nil
	}
	if d, err := time.ParseDuration(strings.ToLower(v)); err == nil && d >= 0 {
		return d, true, nil
	}
	return 0, false, h.errorf("%s %q is not a number of seconds", key, v)
}

// getPositive reads a keyword that is a positive number, 0 when unset.
func (h *hostConfig) getPositive(key string) (int, error) {
	v := h.get(key)
	if v == "" {
		return 0, nil
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
		'k': h.t.Host, 'j': h.get("proxyjump"),
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
