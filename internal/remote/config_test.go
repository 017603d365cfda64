package remote

import (
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const userConfig = `
# fleet test config
Host web*  !web-legacy
  HostName %h.example.com
  User deploy
  Port 2200
  IdentityFile ~/.ssh/web_key
  IdentitiesOnly yes

Host db1
  HostName 10.0.0.5
  StrictHostKeyChecking accept-new
  UserKnownHostsFile ~/kh1 %d/kh2
  ConnectTimeout 5
  ServerAliveInterval 7
  ServerAliveCountMax 2
  HashKnownHosts yes

Host quoted
  IdentityFile "~/.ssh/with space"
  IdentityAgent none

Host aliased
  HostName 192.0.2.7
  HostKeyAlias prod-box
  IdentityFile %d/.ssh/id_%r@%h:%p
  ServerAliveInterval 0

Host lax
  StrictHostKeyChecking no

Host jump
  ProxyJump bastion

Host proxied
  ProxyCommand nc %h %p

Host badport
  Port ssh

Host *
  User fallback
  GlobalKnownHostsFile /etc/fleet/known_hosts
`

const systemConfig = `
Host *
  Port 2022
  User system-user
  ConnectTimeout 30
  IdentityAgent /run/agent.sock
`

// withOwnReader makes Resolve use fleet's own ssh_config reader, as on a
// machine without ssh (TestOracle compares both with ssh -G).
func withOwnReader(o Options) Options {
	o.SSHBinary = "none"
	return o
}

// setHome makes home the local user's home directory, for ~ and %d.
func setHome(t *testing.T, home string) {
	t.Helper()
	old := passwdHome
	passwdHome = func() (string, error) { return home, nil }
	t.Cleanup(func() { passwdHome = old })
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	setHome(t, home)
	t.Setenv("SSH_AUTH_SOCK", "/tmp/env-agent.sock")
	dir := t.TempDir()
	uc, sc := filepath.Join(dir, "config"), filepath.Join(dir, "ssh_config")
	os.WriteFile(uc, []byte(userConfig), 0o644)
	os.WriteFile(sc, []byte(systemConfig), 0o644)
	opts := Options{ConfigFiles: []string{uc, sc}}
	var defIDs []string
	for _, n := range defaultIdentities {
		defIDs = append(defIDs, home+"/.ssh/"+n)
	}
	defKH := []string{home + "/.ssh/known_hosts", home + "/.ssh/known_hosts2"}

	tests := []struct {
		name string
		opts Options
		t    Target
		want Endpoint
	}{
		{
			name: "pattern with HostName token",
			t:    Target{Host: "web1"},
			want: Endpoint{Host: "web1", Address: "web1.example.com", User: "deploy", Port: 2200,
				IdentityFiles: []string{home + "/.ssh/web_key"}, IdentitiesOnly: true,
				AgentSocket: "/run/agent.sock", KnownHostsFiles: defKH, GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"},
				StrictHostKeyChecking: "yes", ConnectTimeout: 30 * time.Second, ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 3, MaxSessions: 10, ConnectionAttempts: 1},
		},
		{
			name: "target user and port win over config",
			t:    Target{Host: "web1", User: "admin", Port: 22},
			want: Endpoint{Host: "web1", Address: "web1.example.com", User: "admin", Port: 22,
				IdentityFiles: []string{home + "/.ssh/web_key"}, IdentitiesOnly: true,
				AgentSocket: "/run/agent.sock", KnownHostsFiles: defKH, GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"},
				StrictHostKeyChecking: "yes", ConnectTimeout: 30 * time.Second, ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 3, MaxSessions: 10, ConnectionAttempts: 1},
		},
		{
			name: "negated pattern falls through to Host * and the system file",
			t:    Target{Host: "web-legacy"},
			want: Endpoint{Host: "web-legacy", Address: "web-legacy", User: "fallback", Port: 2022,
				IdentityFiles: defIDs, AgentSocket: "/run/agent.sock", KnownHostsFiles: defKH, GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"},
				StrictHostKeyChecking: "yes", ConnectTimeout: 30 * time.Second, ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 3, MaxSessions: 10, ConnectionAttempts: 1},
		},
		{
			name: "known hosts, timeouts, accept-new",
			t:    Target{Host: "db1"},
			want: Endpoint{Host: "db1", Address: "10.0.0.5", User: "fallback", Port: 2022,
				IdentityFiles: defIDs, AgentSocket: "/run/agent.sock", KnownHostsFiles: []string{home + "/kh1", home + "/kh2"},
				GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"}, HashKnownHosts: true,
				StrictHostKeyChecking: "accept-new", ConnectTimeout: 5 * time.Second, ServerAliveInterval: 7 * time.Second, ServerAliveCountMax: 2, MaxSessions: 10, ConnectionAttempts: 1},
		},
		{
			name: "options override config",
			opts: Options{KnownHostsFiles: []string{"~/fleet_known_hosts"}, StrictHostKeyChecking: "yes", ConnectTimeout: time.Second, IdentityFiles: []string{"~/deploy_key"}},
			t:    Target{Host: "db1"},
			want: Endpoint{Host: "db1", Address: "10.0.0.5", User: "fallback", Port: 2022,
				IdentityFiles: append([]string{home + "/deploy_key"}, defIDs...), AgentSocket: "/run/agent.sock", KnownHostsFiles: []string{home + "/fleet_known_hosts"},
				GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"}, HashKnownHosts: true,
				StrictHostKeyChecking: "yes", ConnectTimeout: time.Second, ServerAliveInterval: 7 * time.Second, ServerAliveCountMax: 2, MaxSessions: 10, ConnectionAttempts: 1},
		},
		{
			name: "quoted value, agent none",
			t:    Target{Host: "quoted"},
			want: Endpoint{Host: "quoted", Address: "quoted", User: "fallback", Port: 2022,
				IdentityFiles: []string{home + "/.ssh/with space"}, KnownHostsFiles: defKH, GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"},
				StrictHostKeyChecking: "yes", ConnectTimeout: 30 * time.Second, ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 3, MaxSessions: 10, ConnectionAttempts: 1},
		},
		{
			name: "tokens, HostKeyAlias, keepalives off",
			t:    Target{Host: "aliased", User: "ops", Port: 2201},
			want: Endpoint{Host: "aliased", Address: "192.0.2.7", User: "ops", Port: 2201, HostKeyAlias: "prod-box",
				IdentityFiles: []string{home + "/.ssh/id_ops@192.0.2.7:2201"}, AgentSocket: "/run/agent.sock", KnownHostsFiles: defKH, GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"},
				StrictHostKeyChecking: "yes", ConnectTimeout: 30 * time.Second, ServerAliveInterval: -1, ServerAliveCountMax: 3, MaxSessions: 10, ConnectionAttempts: 1},
		},
		{
			name: "config StrictHostKeyChecking no becomes accept-new",
			t:    Target{Host: "lax"},
			want: Endpoint{Host: "lax", Address: "lax", User: "fallback", Port: 2022,
				IdentityFiles: defIDs, AgentSocket: "/run/agent.sock", KnownHostsFiles: defKH, GlobalKnownHostsFiles: []string{"/etc/fleet/known_hosts"},
				StrictHostKeyChecking: "accept-new", ConnectTimeout: 30 * time.Second, ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 3, MaxSessions: 10, ConnectionAttempts: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := withOwnReader(tt.opts)
			o.ConfigFiles = opts.ConfigFiles
			got, err := Resolve(o, tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve(%+v):\n got %+v\nwant %+v", tt.t, got, tt.want)
			}
		})
	}

	for _, bad := range []struct {
		opts Options
		t    Target
		want string
	}{
		{opts, Target{Host: "badport"}, "Port"},
		{Options{ConfigFiles: opts.ConfigFiles, StrictHostKeyChecking: "no"}, Target{Host: "web1"}, "not supported"},
		{Options{ConfigFiles: []string{filepath.Join(dir, "missing")}}, Target{Host: "web1"}, "missing"},
		{opts, Target{Host: ""}, "empty host"},
	} {
		if _, err := Resolve(withOwnReader(bad.opts), bad.t); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Resolve(%+v) err = %v, want %q", bad.t, err, bad.want)
		}
	}
}

func TestResolveDefaults(t *testing.T) {
	home := t.TempDir()
	setHome(t, home)
	t.Setenv("SSH_AUTH_SOCK", "")
	// No config at all.
	e, err := Resolve(withOwnReader(Options{ConfigFiles: []string{}}), Target{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{Host: "h", Address: "h", User: "root", Port: 22,
		IdentityFiles:         []string{home + "/.ssh/id_rsa", home + "/.ssh/id_ecdsa", home + "/.ssh/id_ecdsa_sk", home + "/.ssh/id_ed25519", home + "/.ssh/id_ed25519_sk", home + "/.ssh/id_xmss", home + "/.ssh/id_dsa"},
		KnownHostsFiles:       []string{home + "/.ssh/known_hosts", home + "/.ssh/known_hosts2"},
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		StrictHostKeyChecking: "yes", ConnectTimeout: 10 * time.Second, ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 3, MaxSessions: 10, ConnectionAttempts: 1}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got  %+v\nwant %+v", e, want)
	}
	if s := e.String(); s != "root@h:22" {
		t.Errorf("String() = %q", s)
	}
	if s := (Endpoint{User: "u", Address: "::1", Port: 2222}).String(); s != "u@[::1]:2222" {
		t.Errorf("String() = %q", s)
	}

	// Default files: ~/.ssh/config is read (and may be missing).
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host h\n  User fromhome\n"), 0o600)
	if e, err = Resolve(withOwnReader(Options{}), Target{Host: "h"}); err != nil || e.User != "fromhome" {
		t.Errorf("default config files: %+v %v", e, err)
	}
}

func TestResolveHomeFromPasswd(t *testing.T) {
	u, err := user.Current()
	if err != nil || u.HomeDir == "" {
		t.Skip("no passwd entry")
	}
	t.Setenv("HOME", "/nonexistent")
	e, err := Resolve(withOwnReader(Options{ConfigFiles: []string{}}), Target{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(u.HomeDir, ".ssh", "known_hosts"); e.KnownHostsFiles[0] != want {
		t.Errorf("known_hosts = %q, want %q", e.KnownHostsFiles[0], want)
	}
}

func TestExpandTokens(t *testing.T) {
	tok := map[byte]string{'h': "host", 'p': "22"}
	for in, want := range map[string]string{"a": "a", "%h:%p": "host:22", "100%%": "100%"} {
		if got, err := expandTokens(in, tok); err != nil || got != want {
			t.Errorf("expandTokens(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"%C", "x%"} {
		if _, err := expandTokens(bad, tok); err == nil {
			t.Errorf("expandTokens(%q) accepted", bad)
		}
	}
}

// TestConfigParsedOnce checks that Resolve parses a config file once, again
// when it changes, and can be called concurrently.
func TestConfigParsedOnce(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	cf := filepath.Join(t.TempDir(), "config")
	o := withOwnReader(Options{ConfigFiles: []string{cf}})
	parsed := func() any {
		parsedFiles.mu.Lock()
		defer parsedFiles.mu.Unlock()
		return parsedFiles.files[cf].cfg
	}
	for i, step := range []struct {
		config   string // written first, if not ""
		user     string // User resolved for h
		reparsed bool
	}{
		{config: "Host h\n  User one\n", user: "one", reparsed: true},
		{user: "one"},
		{config: "Host h\n  User three\n", user: "three", reparsed: true},
		{user: "three"},
	} {
		before := parsed()
		if step.config != "" {
			if err := os.WriteFile(cf, []byte(step.config), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if e, err := Resolve(o, Target{Host: "h"}); err != nil || e.User != step.user {
					t.Errorf("step %d: User %q, %v; want %q", i, e.User, err, step.user)
				}
			}()
		}
		wg.Wait()
		if after := parsed(); (after != before) != step.reparsed {
			t.Errorf("step %d: parsed again: %v, want %v", i, after != before, step.reparsed)
		}
	}
}
