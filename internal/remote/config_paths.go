package remote

// This file expands the file names of ssh_config and Options as ssh
// does: a leading ~ or ~user, and % tokens, some of which ask about the
// local user and machine (answered lazily, once per Resolve).

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
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

// passwdHome is the local user's home directory in the passwd database
// (a variable for tests).
var passwdHome = func() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

// homeDir is what ssh takes for ~ and %d: the passwd entry's home
// directory, not $HOME; $HOME only when there is no entry.
func (l *localEnv) homeDir() (string, error) {
	if !l.done {
		l.done = true
		l.home, l.homeErr = passwdHome()
		if l.homeErr != nil || l.home == "" {
			l.home, l.homeErr = os.Getenv("HOME"), nil
			if l.home == "" {
				l.homeErr = errors.New("the passwd database has no home directory for the local user, and $HOME is unset")
			}
		}
	}
	return l.home, l.homeErr
}

// expandPath expands a leading ~ or ~user, ${VAR} and the % tokens of
// ssh_config file names (%d, %u, %i, %l, %L, %C, plus those in tokens).
func (l *localEnv) expandPath(p string, tokens map[byte]string) (string, error) {
	p, err := expandEnv(p)
	if err != nil {
		return "", err
	}
	all, err := l.localTokens(p, tokens)
	if err != nil {
		return "", err
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

// expand expands the % tokens of a command (ProxyCommand, Match exec);
// the shell expands the rest.
func (l *localEnv) expand(s string, tokens map[byte]string) (string, error) {
	all, err := l.localTokens(s, tokens)
	if err != nil {
		return "", err
	}
	return expandTokens(s, all)
}

// expandEnv expands ${VAR}, as ssh does in file names; an unset variable
// is an error, as in ssh.
func expandEnv(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: unterminated ${", s)
		}
		name := s[i+2 : i+end]
		v, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("%q: environment variable %s is not set", s, name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

// localTokens adds to tokens those about the local user and machine that
// s uses (and %d whenever s starts with ~).
func (l *localEnv) localTokens(p string, tokens map[byte]string) (map[byte]string, error) {
	all := map[byte]string{}
	for k, v := range tokens {
		all[k] = v
	}
	needs := func(b byte) bool { return strings.Contains(p, "%"+string(b)) }
	if needs('d') || strings.HasPrefix(p, "~") {
		home, err := l.homeDir()
		if err != nil {
			return nil, err
		}
		all['d'] = home
	}
	if needs('u') || needs('i') {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("local user: %w", err)
		}
		all['u'], all['i'] = u.Username, u.Uid
	}
	if needs('l') || needs('L') || needs('C') {
		h, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		all['l'] = h
		all['L'], _, _ = strings.Cut(h, ".")
	}
	if needs('C') {
		// ssh's connection hash: SHA-1 of %l%h%p%r%j.
		sum := sha1.Sum([]byte(all['l'] + all['h'] + all['p'] + all['r'] + all['j']))
		all['C'] = hex.EncodeToString(sum[:])
	}
	return all, nil
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
