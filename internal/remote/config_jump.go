package remote

// This file follows ProxyJump: the jump hosts a host is reached through,
// each resolved like any host, in the order they are connected to, with
// loops reported rather than followed.

import (
	"fmt"
	"strconv"
	"strings"
)

// maxJumps bounds a host's chain of jump hosts.
const maxJumps = 16

// resolveChain resolves t and, through its ProxyJump, its jump hosts.
// stack holds the (lower-cased) names being resolved, outermost first.
func resolveChain(o Options, src source, env *localEnv, t Target, stack []string) (Endpoint, error) {
	e, proxyJump, err := resolveOne(o, src, env, t)
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
	first, err := resolveChain(o, src, env, hops[0], stack)
	if err != nil {
		return Endpoint{}, err
	}
	jumps := append(first.Jumps, first)
	jumps[len(jumps)-1].Jumps = nil
	for _, h := range hops[1:] {
		j, _, err := resolveOne(o, src, env, h)
		if err != nil {
			return Endpoint{}, err
		}
		j.ProxyCommand = "" // reached through the hop before (ssh -J)
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
