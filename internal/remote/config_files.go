package remote

// This file is fleet's own ssh_config reader, the fallback for machines
// without an `ssh` binary (config_sshg.go asks OpenSSH when there is one).
// It reads the files as OpenSSH's readconf.c does: keyword [=] arguments
// with double quotes, Host and Match blocks, Include (globbed, relative to
// ~/.ssh, nested blocks scoped to the included file), and the first value
// obtained for a keyword wins (IdentityFile and CertificateFile add up).
// Match supports all, host, originalhost, user, localuser, exec, final and
// canonical; a criterion it does not know (tagged, localnetwork, ...)
// makes it skip that block with a warning rather than fail the file.
//
// Each file is parsed once per process and kept, and parsed again only
// when it has changed: Resolve may run for every connection.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
)

const systemSSHConfig = "/etc/ssh/ssh_config"

// configLine is one keyword line of a file.
type configLine struct {
	key  string   // lower-cased keyword
	args []string // its arguments, unquoted
	raw  string   // the text after the keyword (and '='), as written
	file string
	num  int
}

// configFile is a parsed ssh_config file.
type configFile struct {
	name  string
	lines []configLine
}

// parseConfig splits an ssh_config file into keyword lines.
func parseConfig(name string, b []byte) (*configFile, error) {
	f := &configFile{name: name}
	for i, text := range strings.Split(string(b), "\n") {
		text = strings.TrimSpace(strings.TrimSuffix(text, "\r"))
		if text == "" || text[0] == '#' {
			continue
		}
		end := strings.IndexAny(text, " \t=")
		if end < 0 {
			end = len(text)
		}
		key, rest := text[:end], strings.TrimLeft(text[end:], " \t")
		if strings.HasPrefix(rest, "=") {
			rest = strings.TrimLeft(rest[1:], " \t")
		}
		args, err := splitArgs(rest)
		if err != nil {
			return nil, fmt.Errorf("remote: ssh_config %s line %d: %v", name, i+1, err)
		}
		f.lines = append(f.lines, configLine{key: strings.ToLower(key), args: args, raw: rest, file: name, num: i + 1})
	}
	return f, nil
}

// splitArgs splits s at blanks, as ssh does: double quotes group, a '#'
// starting a word begins a comment.
func splitArgs(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] == '#' {
			return out, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, errors.New("unbalanced quotes")
			}
			out = append(out, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
}

// loadConfig reads files, or with nil the default ones (those of them
// that exist).
func loadConfig(files []string, env *localEnv) ([]*configFile, error) {
	explicit := files != nil
	if !explicit {
		files = defaultConfigFiles(env)
	}
	var out []*configFile
	for _, name := range files {
		cfg, err := parsedFiles.load(name)
		if err != nil {
			if !explicit && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, cfg)
	}
	return out, nil
}

// defaultConfigFiles are the files ssh reads when given no -F.
func defaultConfigFiles(env *localEnv) []string {
	var files []string
	if home, err := env.homeDir(); err == nil {
		files = append(files, filepath.Join(home, ".ssh", "config"))
	}
	return append(files, systemSSHConfig)
}

// parsedFiles holds every ssh_config file read in this process.
var parsedFiles = &configCache{files: map[string]parsedFile{}}

// configCache holds parsed ssh_config files by name. It is safe for
// concurrent use, and so are the parsed files (lookups only read them).
type configCache struct {
	mu    sync.Mutex
	files map[string]parsedFile
}

// parsedFile is a file as it was parsed: what os.Stat said of it then,
// and its contents.
type parsedFile struct {
	info os.FileInfo
	cfg  *configFile
}

// load returns the parsed file name: as parsed before if it is still the
// same file, with the same size and modification time; else read and
// parsed now. A missing file is an error wrapping os.ErrNotExist.
func (c *configCache) load(name string) (*configFile, error) {
	info, statErr := os.Stat(name)
	if statErr == nil {
		c.mu.Lock()
		p, ok := c.files[name]
		c.mu.Unlock()
		if ok && os.SameFile(p.info, info) && p.info.Size() == info.Size() && p.info.ModTime().Equal(info.ModTime()) {
			return p.cfg, nil
		}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("remote: ssh_config: %w", err)
	}
	cfg, err := parseConfig(name, b)
	if err != nil {
		return nil, err
	}
	if statErr == nil {
		// Read after the stat: if the file changed in between, the next
		// load sees another stat and parses it again.
		c.mu.Lock()
		c.files[name] = parsedFile{info: info, cfg: cfg}
		c.mu.Unlock()
	}
	return cfg, nil
}

// multiValued keywords add up over every line that applies.
var multiValued = map[string]bool{"identityfile": true, "certificatefile": true}

// listValued keywords take every argument of their first line.
var listValued = map[string]bool{"userknownhostsfile": true, "globalknownhostsfile": true, "canonicaldomains": true}

// rawValued keywords take their line as written (a command).
var rawValued = map[string]bool{"proxycommand": true}

// evaluation is one evaluation of the files for a host, as ssh's
// read_config_files: what applies, first value first.
type evaluation struct {
	env      *localEnv
	hostArg  string // the name as given (originalhost)
	host     string // what Host and Match host test in this pass
	final    bool   // the second pass (Match final, canonical)
	values   settings
	wantLast bool // a Match final was seen: do a second pass
	warn     func(string)
	depth    int
}

// evaluate applies the files to t as ssh would, in one or two passes.
func evaluate(files []*configFile, env *localEnv, t Target, warn func(string)) (settings, error) {
	ev := &evaluation{env: env, hostArg: t.Host, host: t.Host, values: settings{}, warn: warn}
	if t.User != "" {
		ev.values["user"] = []string{t.User}
	}
	if t.Port != 0 {
		ev.values["port"] = []string{fmt.Sprint(t.Port)}
	}
	if err := ev.pass(files); err != nil {
		return nil, err
	}
	if ev.wantLast {
		ev.final = true
		if hn := ev.values.get("hostname"); hn != "" {
			if h, err := expandTokens(hn, map[byte]string{'h': t.Host}); err == nil {
				ev.host = h
			}
		}
		if err := ev.pass(files); err != nil {
			return nil, err
		}
	}
	return ev.values, nil
}

func (ev *evaluation) pass(files []*configFile) error {
	for _, f := range files {
		if err := ev.file(f, true); err != nil {
			return err
		}
	}
	return nil
}

// file applies one file; active says whether the block around it (for an
// Include) applies.
func (ev *evaluation) file(f *configFile, outer bool) error {
	active := outer
	for _, l := range f.lines {
		switch l.key {
		case "host":
			active = outer && ev.matchHost(l.args)
			continue
		case "match":
			m, err := ev.match(l)
			if err != nil {
				return err
			}
			active = outer && m
			continue
		}
		if !active {
			continue
		}
		if l.key == "include" {
			if err := ev.include(l); err != nil {
				return err
			}
			continue
		}
		ev.set(l)
	}
	return nil
}

// set records l's value unless one was obtained before.
func (ev *evaluation) set(l configLine) {
	if len(l.args) == 0 {
		return
	}
	key := l.key
	switch {
	case multiValued[key]:
		ev.values[key] = append(ev.values[key], l.args[0])
		return
	case key == "proxyjump" || key == "proxycommand":
		// One slot for both: whichever is obtained first wins, as in ssh.
		if ev.values["proxyjump"] != nil || ev.values["proxycommand"] != nil {
			return
		}
	case ev.values[key] != nil:
		return
	}
	switch {
	case listValued[key]:
		ev.values[key] = append([]string(nil), l.args...)
	case rawValued[key]:
		ev.values[key] = []string{l.raw}
	default:
		ev.values[key] = []string{l.args[0]}
	}
}

// matchHost reports whether a Host line's patterns match.
func (ev *evaluation) matchHost(patterns []string) bool {
	return matchList(patterns, strings.ToLower(ev.host))
}

// matchList is ssh's match_pattern_list: some positive pattern matches
// and no negated one does.
func matchList(patterns []string, s string) bool {
	matched := false
	for _, p := range patterns {
		for _, p := range strings.Split(p, ",") {
			if p == "" {
				continue
			}
			neg := strings.HasPrefix(p, "!")
			if neg {
				p = p[1:]
			}
			if matchPattern(strings.ToLower(p), s) {
				if neg {
					return false
				}
				matched = true
			}
		}
	}
	return matched
}

// matchPattern matches s against a pattern of '*' (any run) and '?'
// (exactly one character).
func matchPattern(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if matchPattern(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

// match evaluates a Match line. A criterion it does not know skips the
// block, with a warning.
func (ev *evaluation) match(l configLine) (bool, error) {
	args := l.args
	if len(args) == 0 {
		return false, fmt.Errorf("remote: ssh_config %s line %d: Match without criteria", l.file, l.num)
	}
	result := true
	for i := 0; i < len(args); i++ {
		crit := strings.ToLower(args[i])
		neg := strings.HasPrefix(crit, "!")
		crit = strings.TrimPrefix(crit, "!")
		var ok bool
		switch crit {
		case "all":
			ok = true
		case "canonical", "final":
			if crit == "final" && !neg {
				ev.wantLast = true
			}
			ok = ev.final
		case "host", "originalhost", "user", "localuser", "exec":
			if i+1 >= len(args) {
				return false, fmt.Errorf("remote: ssh_config %s line %d: Match %s needs an argument", l.file, l.num, crit)
			}
			i++
			arg := args[i]
			switch crit {
			case "host":
				ok = matchList([]string{arg}, strings.ToLower(ev.currentHost()))
			case "originalhost":
				ok = matchList([]string{arg}, strings.ToLower(ev.hostArg))
			case "user":
				ok = matchList([]string{arg}, ev.remoteUser())
			case "localuser":
				ok = matchList([]string{arg}, ev.localUser())
			case "exec":
				ok = ev.exec(arg)
			}
		default:
			ev.warn(fmt.Sprintf("ssh_config %s line %d: Match %s is not supported without the ssh binary: block skipped", l.file, l.num, crit))
			return false, nil
		}
		if ok == neg {
			result = false
		}
	}
	return result, nil
}

// currentHost is what Match host tests: HostName so far (%h expanded),
// else the name.
func (ev *evaluation) currentHost() string {
	if ev.final {
		return ev.host
	}
	if hn := ev.values.get("hostname"); hn != "" {
		if h, err := expandTokens(hn, map[byte]string{'h': ev.hostArg}); err == nil {
			return h
		}
	}
	return ev.hostArg
}

// remoteUser is what Match user tests: User so far, else the local user.
func (ev *evaluation) remoteUser() string {
	if u := ev.values.get("user"); u != "" {
		return u
	}
	return ev.localUser()
}

func (ev *evaluation) localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// exec runs a Match exec command with /bin/sh; exit status 0 matches.
func (ev *evaluation) exec(cmd string) bool {
	port := ev.values.get("port")
	if port == "" {
		port = "22"
	}
	tokens := map[byte]string{'h': ev.currentHost(), 'n': ev.hostArg, 'p': port, 'r': ev.remoteUser()}
	c, err := ev.env.expandPath(cmd, tokens)
	if err != nil {
		ev.warn(fmt.Sprintf("Match exec %q: %v: block skipped", cmd, err))
		return false
	}
	return exec.Command("/bin/sh", "-c", c).Run() == nil
}

// include reads the files an Include line names (globs; relative names
// are in ~/.ssh), as part of the block it is in.
// globInclude is the files one pattern of an Include line names: ~ and
// tokens expanded, relative to ~/.ssh in a user's file and /etc/ssh in
// the system's, globbed.
func (ev *evaluation) globInclude(l configLine, pat string) ([]string, error) {
	p, err := ev.env.expandPath(pat, nil)
	if err != nil {
		return nil, fmt.Errorf("remote: ssh_config %s line %d: Include %q: %v", l.file, l.num, pat, err)
	}
	if !filepath.IsAbs(p) {
		dir := "/etc/ssh"
		if home, err := ev.env.homeDir(); err == nil && !strings.HasPrefix(l.file, "/etc/") {
			dir = filepath.Join(home, ".ssh")
		}
		p = filepath.Join(dir, p)
	}
	names, err := filepath.Glob(p)
	if err != nil {
		return nil, fmt.Errorf("remote: ssh_config %s line %d: Include %q: %v", l.file, l.num, pat, err)
	}
	return names, nil
}

// includedFiles is every file an Include line names (patterns that do
// not expand are left out).
func (ev *evaluation) includedFiles(l configLine) []string {
	var out []string
	for _, pat := range l.args {
		names, _ := ev.globInclude(l, pat)
		out = append(out, names...)
	}
	return out
}

func (ev *evaluation) include(l configLine) error {
	if ev.depth >= 16 {
		return fmt.Errorf("remote: ssh_config %s line %d: Include nested too deeply", l.file, l.num)
	}
	for _, pat := range l.args {
		names, err := ev.globInclude(l, pat)
		if err != nil {
			return err
		}
		for _, name := range names {
			f, err := parsedFiles.load(name)
			if err != nil {
				return err
			}
			ev.depth++
			err = ev.file(f, true)
			ev.depth--
			if err != nil {
				return err
			}
		}
	}
	return nil
}
