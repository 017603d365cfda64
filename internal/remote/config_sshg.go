package remote

// This file asks OpenSSH itself what ssh_config says of a host: `ssh -G`
// evaluates the files exactly as `ssh` will (Match exec, final and
// canonical, Include, CanonicalizeHostname, first-obtained-wins) and
// prints the result without connecting. Its output is the reference the
// oracle test holds fleet's own reader (config_files.go) to; fleet asks
// it only when the files use what that reader does not evaluate
// (newSource in config.go), since it costs a process per host.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// settings are the keyword values for one host, lower-cased keywords as
// `ssh -G` prints them; a keyword may have several values (IdentityFile,
// the files of UserKnownHostsFile).
type settings map[string][]string

func (s settings) get(key string) string {
	if v := s[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// sshGTimeout bounds one `ssh -G` (a Match exec may run anything).
var sshGTimeout = 30 * time.Second

// unsetUser is the User that ssh -G reports when no file sets one: the
// config given to ssh ends in `Match all / User unsetUser`, which applies
// only when nothing before it set User (first value wins). fleet's default
// is root, ssh's would be the local user. When ssh makes a second, final
// pass (Match final, CanonicalizeHostname), a User of that pass must win
// over the sentinel of the first: then ssh -G runs again with the sentinel
// under `Match final all` (not always, since forcing a final pass would
// make `Match canonical` true).
const unsetUser = "fleet-no-user-set"

// findSSH returns the ssh binary to ask: Options.SSHBinary ("none": none),
// else `ssh` on $PATH, if any.
func findSSH(o Options) string {
	switch o.SSHBinary {
	case "none":
		return ""
	case "":
		p, err := exec.LookPath("ssh")
		if err != nil {
			return ""
		}
		return p
	}
	return o.SSHBinary
}

// sshG is a settings source that runs `ssh -G`; files is the config it
// reads, written once per Resolve.
type sshG struct {
	bin   string
	file  string // the wrapper config given to -F
	final string // the same, with the User sentinel in the final pass
	once  sync.Once
	err   error
	o     Options
	env   *localEnv
}

// prepare writes the config that ssh -G reads: the files Options name (or
// ssh's default ones), included in order, then the User sentinel. It is
// always given with -F, so that the sentinel is read last.
func (g *sshG) prepare() error {
	g.once.Do(func() {
		files := g.o.ConfigFiles
		if files == nil {
			for _, f := range defaultConfigFiles(g.env) {
				if _, err := os.Stat(f); err == nil {
					files = append(files, f)
				}
			}
		}
		var b strings.Builder
		b.WriteString("# written by fleet for ssh -G\n")
		for _, f := range files {
			abs, err := filepath.Abs(f)
			if err != nil {
				g.err = err
				return
			}
			// ssh ignores an Include that matches nothing; fleet says so.
			if _, err := os.Stat(abs); err != nil {
				g.err = fmt.Errorf("remote: ssh_config: %w", err)
				return
			}
			fmt.Fprintf(&b, "Include %s\n", quoteConfigArg(abs))
		}
		head := b.String()
		if g.file, g.err = writeTemp(head + "Match all\n  User " + unsetUser + "\n"); g.err != nil {
			return
		}
		g.final, g.err = writeTemp(head + "Match final all\n  User " + unsetUser + "\n")
	})
	return g.err
}

func writeTemp(text string) (string, error) {
	f, err := os.CreateTemp("", "fleet-ssh-config-*")
	if err != nil {
		return "", fmt.Errorf("remote: ssh -G: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("remote: ssh -G: %w", err)
	}
	return f.Name(), nil
}

func (g *sshG) close() {
	for _, f := range []string{g.file, g.final} {
		if f != "" {
			os.Remove(f)
		}
	}
}

// quoteConfigArg quotes a file name for an ssh_config line.
func quoteConfigArg(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return `"` + s + `"`
	}
	return s
}

// lookup runs `ssh -G -v -F wrapper [-l user] [-p port] host`, and again
// with the final-pass sentinel if ssh made a final pass.
func (g *sshG) lookup(t Target) (settings, error) {
	if err := g.prepare(); err != nil {
		return nil, err
	}
	s, finalPass, err := g.run(g.file, t)
	if err == nil && finalPass && t.User == "" {
		s, _, err = g.run(g.final, t)
	}
	return s, err
}

func (g *sshG) run(file string, t Target) (settings, bool, error) {
	args := []string{"-G", "-v", "-F", file}
	if t.User != "" {
		args = append(args, "-l", t.User)
	}
	if t.Port != 0 {
		args = append(args, "-p", strconv.Itoa(t.Port))
	}
	args = append(args, "--", t.Host)
	ctx, cancel := context.WithTimeout(context.Background(), sshGTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = nil
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, false, fmt.Errorf("remote: ssh -G %s: no answer within %s (a Match exec that hangs?)", t.Host, sshGTimeout)
	}
	var msgs []string
	finalPass := false
	for _, l := range strings.Split(stderr.String(), "\n") {
		switch {
		case strings.Contains(l, "re-parsing configuration"):
			finalPass = true
		case strings.HasPrefix(l, "debug"), strings.HasPrefix(l, "OpenSSH_"), strings.HasPrefix(l, "Pseudo-terminal"), l == "":
		default:
			msgs = append(msgs, strings.ReplaceAll(l, file, "fleet's ssh_config"))
		}
	}
	if err != nil {
		msg := strings.Join(msgs, "; ")
		if msg == "" {
			msg = err.Error()
		}
		return nil, false, fmt.Errorf("remote: ssh_config for %s (as `ssh -G` reads it): %s", t.Host, msg)
	}
	return parseSSHG(stdout.String()), finalPass, nil
}

// parseSSHG reads `ssh -G` output: "keyword value" lines.
func parseSSHG(out string) settings {
	s := settings{}
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		key = strings.ToLower(key)
		val = strings.ReplaceAll(val, unsetUser, "root")
		switch key {
		case "userknownhostsfile", "globalknownhostsfile":
			s[key] = splitFileList(val)
		case "canonicaldomains":
			s[key] = strings.Fields(val)
		default:
			s[key] = append(s[key], val)
		}
	}
	return s
}

// splitFileList splits the file list ssh -G prints, space-separated with
// no quoting: ssh has expanded ~ already, so a word that does not start a
// path ('/') continues the one before ("/tmp/a b/kh" stays one file).
func splitFileList(v string) []string {
	var out []string
	for _, w := range strings.Split(v, " ") {
		if len(out) > 0 && !strings.HasPrefix(w, "/") && !strings.EqualFold(w, "none") {
			out[len(out)-1] += " " + w
			continue
		}
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}
