package remote

// This file expands the file names of ssh_config and Options as ssh
// does: a leading ~ or ~user, and % tokens, some of which ask about the
// local user and machine (answered lazily, once per Resolve).

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

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

// dedup drops the repeats from s, keeping the first of each.
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
