package remote

// This file asks OpenSSH itself what ssh_config says of a host: `ssh -G`
// evaluates the files exactly as `ssh` will (Match exec, final and
// canonical, Include, CanonicalizeHostname, first-obtained-wins) and
// prints the result without connecting. Its output is the reference;
// config_files.go is only the fallback for machines without ssh.

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
// is root, ssh's would be the local user.
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
	bin  string
	file string // the wrapper config given to -F
	once sync.Once
	err  error
	o    Options
	env  *localEnv
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
		fmt.Fprintf(&b, "Match all\n  User %s\n", unsetUser)
		f, err := os.CreateTemp("", "fleet-ssh-config-*")
		if err != nil {
			g.err = fmt.Errorf("remote: ssh -G: %w", err)
			return
		}
		defer f.Close()
		if _, err := f.WriteString(b.String()); err != nil {
			g.err = fmt.Errorf("remote: ssh -G: %w", err)
			return
		}
		g.file = f.Name()
	})
	return g.err
}

func (g *sshG) close() {
	if g.file != "" {
		os.Remove(g.file)
	}
}

// quoteConfigArg quotes a file name for an ssh_config line.
func quoteConfigArg(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return `"` + s + `"`
	}
	return s
}

// lookup runs `ssh -G [-l user] [-p port] -F wrapper host`.
func (g *sshG) lookup(t Target) (settings, error) {
	if err := g.prepare(); err != nil {
		return nil, err
	}
	args := []string{"-G", "-F", g.file}
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
		return nil, fmt.Errorf("remote: ssh -G %s: no answer within %s (a Match exec that hangs?)", t.Host, sshGTimeout)
	}
	if err != nil {
		msg := strings.TrimSpace(strings.ReplaceAll(stderr.String(), g.file, "fleet's ssh_config"))
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("remote: ssh_config for %s (as `ssh -G` reads it): %s", t.Host, msg)
	}
	return parseSSHG(stdout.String()), nil
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
