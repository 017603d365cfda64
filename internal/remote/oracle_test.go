package remote

// TestOracle is the reference test of ssh_config resolution: every
// scenario is resolved by `ssh -G` (OpenSSH itself) and by Resolve, both
// through ssh -G and, where it claims support, through fleet's own
// reader, and the fields fleet uses must be equal. oracle_dial_test.go
// connects for real where resolving is not enough.

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

type oracleCase struct {
	name   string
	config string // {{dir}} is the scenario's directory
	files  map[string]string
	host   string
	user   string
	port   int
	env    map[string]string
	own    bool // fleet's own reader claims this case too
}

var oracleCases = []oracleCase{
	{name: "plain", config: "Host other\n  User x\n", host: "h1", own: true},
	{name: "user and port from config", config: "Host p2222\n  Port 2222\n  User alice\n", host: "p2222", own: true},
	{name: "fleet.star user and port win", config: "Host p2222\n  Port 2222\n  User alice\n", host: "p2222", user: "bob", port: 2200, own: true},
	{name: "node? does not match node", config: "Host node?\n  HostName 10.9.9.9\n  User wrong\n", host: "node", own: true},
	{name: "node? matches node1", config: "Host node?\n  HostName 10.9.9.9\n  User right\n", host: "node1", own: true},
	{name: "tab-separated patterns", config: "Host\tfoo\tbar\n  User tabbed\n  Port 2022\n", host: "bar", own: true},
	{name: "negated pattern", config: "Host web* !web-legacy\n  User deploy\nHost *\n  User fallback\n", host: "web-legacy", own: true},
	{name: "pattern with HostName token", config: "Host web*\n  HostName %h.example.com\n  Port 2200\n", host: "web1", own: true},
	{name: "first value wins", config: "Host h\n  User first\nHost *\n  User second\n  Port 2300\n", host: "h", own: true},
	{name: "Match host tests the HostName", config: "Host db\n  HostName 10.1.2.3\nMatch host 10.1.2.3\n  ProxyJump bastion\n", host: "db", own: true},
	{name: "Match host comma list", config: "Host db\n  HostName 10.1.2.3\nMatch host 10.0.0.1,10.1.2.*\n  User listed\n", host: "db", own: true},
	{name: "Match originalhost", config: "Host db\n  HostName 10.1.2.3\nMatch originalhost db\n  User orig\n", host: "db", own: true},
	{name: "Match user", config: "Match user alice\n  Port 2201\n", host: "h", user: "alice", own: true},
	{name: "Match user not given", config: "Match user alice\n  Port 2201\n", host: "h", own: true},
	{name: "Match localuser", config: "Match localuser root\n  User fromlocal\n", host: "h", own: true},
	{name: "Match exec true", config: "Match exec \"test %h = h\"\n  User execd\n", host: "h", own: true},
	{name: "Match exec false", config: "Match exec false\n  User execd\nHost *\n  User plain\n", host: "h", own: true},
	{name: "Match final all drop-in", config: "Match final all\n  User late\n  Port 2202\n", host: "h", own: true},
	{name: "Match final after HostName", config: "Host h\n  HostName 10.3.3.3\nMatch final host 10.3.3.3\n  User finalhost\n", host: "h", own: true},
	{name: "Match canonical not canonicalised", config: "Match canonical\n  User canon\nHost *\n  User notcanon\n", host: "h", own: true},
	{name: "Match all", config: "Match all\n  User everyone\n", host: "h", own: true},
	{name: "Include absolute glob", config: "Include {{dir}}/conf.d/*.conf\nHost *\n  User outer\n",
		files: map[string]string{"conf.d/a.conf": "Host inc\n  User included\n  Port 2203\n"}, host: "inc", own: true},
	{name: "Include inside a Host block", config: "Host x\n  Include {{dir}}/x.conf\nHost *\n  Port 2204\n",
		files: map[string]string{"x.conf": "User fromx\n"}, host: "y", own: true},
	{name: "ProxyJump chain", config: "Host t\n  HostName 10.0.0.9\n  ProxyJump j1,deploy@j2:2222\nHost j1\n  User jumper\n  ProxyJump j0\nHost j0\n  Port 2200\nHost j2\n  ProxyJump nowhere\n", host: "t", own: true},
	{name: "ProxyJump first wins over ProxyCommand", config: "Host t\n  ProxyJump j1\n  ProxyCommand nc %h %p\n", host: "t", own: true},
	{name: "ProxyCommand first wins over ProxyJump", config: "Host t\n  ProxyCommand nc %h %p\nHost *\n  ProxyJump j1\n", host: "t", own: true},
	{name: "ProxyCommand ssh -W", config: "Host t\n  HostName 10.0.0.7\n  Port 2022\n  User ops\n  ProxyCommand ssh -W %h:%p -l %r jump\n", host: "t", own: true},
	{name: "ProxyCommand none", config: "Host t\n  ProxyCommand none\nHost *\n  ProxyJump j1\n", host: "t", own: true},
	{name: "IdentityFile and IdentitiesOnly", config: "Host h\n  IdentityFile ~/.ssh/a\n  IdentityFile %d/.ssh/b_%r@%h:%p\n  IdentitiesOnly yes\nHost *\n  IdentityFile /keys/c\n", host: "h", user: "u", own: true},
	{name: "IdentityFile with ${VAR}", config: "Host h\n  IdentityFile ${FLEET_ORACLE_KEYS}/k\n", host: "h", env: map[string]string{"FLEET_ORACLE_KEYS": "/srv/keys"}, own: true},
	{name: "CertificateFile", config: "Host h\n  IdentityFile /keys/id\n  CertificateFile /keys/id-cert.pub\n  CertificateFile ~/.ssh/other-cert.pub\n", host: "h", own: true},
	{name: ".pub IdentityFile", config: "Host h\n  IdentityFile ~/.ssh/agent_key.pub\n  IdentitiesOnly yes\n", host: "h", own: true},
	{name: "UserKnownHostsFile quoted with a space", config: "Host h\n  UserKnownHostsFile \"/tmp/a b/known\" ~/kh2\n  GlobalKnownHostsFile /etc/fleet/known_hosts\n", host: "h", own: true},
	{name: "UserKnownHostsFile none", config: "Host h\n  UserKnownHostsFile none\n", host: "h", own: true},
	{name: "HostKeyAlias and HashKnownHosts", config: "Host h\n  HostName 192.0.2.7\n  HostKeyAlias prod-box\n  HashKnownHosts yes\n", host: "h", own: true},
	{name: "StrictHostKeyChecking accept-new", config: "Host h\n  StrictHostKeyChecking accept-new\n", host: "h", own: true},
	{name: "StrictHostKeyChecking no", config: "Host h\n  StrictHostKeyChecking no\n", host: "h", own: true},
	{name: "StrictHostKeyChecking yes", config: "Host h\n  StrictHostKeyChecking yes\n", host: "h", own: true},
	{name: "ConnectTimeout and ConnectionAttempts", config: "Host h\n  ConnectTimeout 3\n  ConnectionAttempts 2\n", host: "h", own: true},
	{name: "BindAddress", config: "Host h\n  BindAddress 127.0.0.1\n", host: "h", own: true},
	{name: "IdentityAgent none", config: "Host h\n  IdentityAgent none\n", host: "h", own: true},
	{name: "IdentityAgent path", config: "Host h\n  IdentityAgent ~/agent.sock\n", host: "h", own: true},
	{name: "ssh service name as Port", config: "Host h\n  Port 2205\n", host: "h", own: true},
	{name: "CanonicalizeHostname", config: "CanonicalizeHostname yes\nCanonicalDomains fleet.test\nHost *.fleet.test\n  User canon\n  Port 2206\nHost can\n  User alias\n", host: "can"},
	{name: "Match canonical after canonicalising", config: "CanonicalizeHostname yes\nCanonicalDomains fleet.test\nMatch canonical host can.fleet.test\n  ProxyJump j9\n", host: "can"},
}

// oracleSSH returns an ssh that sees an /etc/hosts of its own (for the
// canonicalisation cases: can.fleet.test resolves without DNS), and
// whether it does; it skips without ssh.
func oracleSSH(t *testing.T) (string, bool) {
	t.Helper()
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no ssh binary")
	}
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	// ssh looks the name up with a trailing dot (can.fleet.test.).
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n127.0.0.9 can.fleet.test can.fleet.test.\n"), 0o644)
	wrapper := filepath.Join(dir, "ssh")
	script := "#!/bin/sh\nexec unshare -m sh -c 'h=$1; shift; mount --bind \"$h\" /etc/hosts && exec " + ssh + " \"$@\"' sh " + hosts + " \"$@\"\n"
	os.WriteFile(wrapper, []byte(script), 0o755)
	if out, err := exec.Command(wrapper, "-G", "-F", "/dev/null", "x").CombinedOutput(); err != nil {
		t.Logf("no mount namespace (%v: %s): canonicalisation cases skipped", err, out)
		return ssh, false
	}
	return wrapper, true
}

// oracleFields are the resolved fields compared.
type oracleFields struct {
	User, Address  string
	Port           int
	Jumps          string // hop names of ssh's ProxyJump, with their given users
	ProxyCommand   string
	Identities     []string
	Certificates   []string
	IdentitiesOnly bool
	Agent          string
	KnownHosts     []string
	GlobalKnown    []string
	Strict         string
	HostKeyAlias   string
	HashKnownHosts bool
	ConnectTimeout time.Duration
	Attempts       int
	BindAddress    string
}

// fromSSHG reads what `ssh -G` prints, independently of Resolve's code.
func fromSSHG(t *testing.T, ssh, cfg string, c oracleCase, home string) oracleFields {
	t.Helper()
	args := []string{"-G", "-F", cfg}
	if c.user != "" {
		args = append(args, "-l", c.user)
	}
	if c.port != 0 {
		args = append(args, "-p", strconv.Itoa(c.port))
	}
	out, err := exec.Command(ssh, append(args, c.host)...).Output()
	if err != nil {
		t.Fatalf("ssh -G: %v", err)
	}
	kv := map[string][]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			kv[k] = append(kv[k], v)
		}
	}
	one := func(k string) string {
		if len(kv[k]) == 0 {
			return ""
		}
		return kv[k][0]
	}
	f := oracleFields{User: one("user"), Address: one("hostname"), Agent: os.Getenv("SSH_AUTH_SOCK"),
		HostKeyAlias: one("hostkeyalias"), BindAddress: one("bindaddress"),
		IdentitiesOnly: one("identitiesonly") == "yes", HashKnownHosts: one("hashknownhosts") == "yes"}
	f.Port, _ = strconv.Atoi(one("port"))
	tok := strings.NewReplacer("%d", home, "%h", f.Address, "%p", one("port"), "%r", f.User, "%n", c.host, "%%", "%")
	expand := func(p string) string {
		if strings.HasPrefix(p, "~/") {
			p = home + p[1:]
		}
		for k, v := range c.env {
			p = strings.ReplaceAll(p, "${"+k+"}", v)
		}
		return tok.Replace(p)
	}
	for _, p := range kv["identityfile"] {
		f.Identities = append(f.Identities, expand(p))
	}
	for _, p := range kv["certificatefile"] {
		f.Certificates = append(f.Certificates, expand(p))
	}
	if pj := one("proxyjump"); pj != "" {
		f.Jumps = pj
	}
	if pc := one("proxycommand"); pc != "" && pc != "none" {
		f.ProxyCommand = tok.Replace(pc)
	}
	switch a := one("identityagent"); a {
	case "", "SSH_AUTH_SOCK":
	case "none":
		f.Agent = ""
	default:
		f.Agent = expand(a)
	}
	for _, p := range splitFileList(one("userknownhostsfile")) {
		if p != "none" {
			f.KnownHosts = append(f.KnownHosts, p)
		}
	}
	f.GlobalKnown = splitFileList(one("globalknownhostsfile"))
	switch one("stricthostkeychecking") {
	case "accept-new", "false":
		f.Strict = "accept-new"
	default:
		f.Strict = "yes"
	}
	if s, err := strconv.Atoi(one("connecttimeout")); err == nil {
		f.ConnectTimeout = time.Duration(s) * time.Second
	} else {
		f.ConnectTimeout = defaultConnectTimeout
	}
	f.Attempts, _ = strconv.Atoi(one("connectionattempts"))
	return f
}

// fromEndpoint is the same for what Resolve returned.
func fromEndpoint(e Endpoint, c oracleCase) oracleFields {
	f := oracleFields{User: e.User, Address: e.Address, Port: e.Port, ProxyCommand: e.ProxyCommand,
		Identities: e.IdentityFiles, Certificates: e.CertificateFiles, IdentitiesOnly: e.IdentitiesOnly,
		Agent: e.AgentSocket, KnownHosts: e.KnownHostsFiles, GlobalKnown: e.GlobalKnownHostsFiles,
		Strict: e.StrictHostKeyChecking, HostKeyAlias: e.HostKeyAlias, HashKnownHosts: e.HashKnownHosts,
		ConnectTimeout: e.ConnectTimeout, Attempts: e.ConnectionAttempts, BindAddress: e.BindAddress}
	return f
}

// jumpSpec rebuilds the ProxyJump value from the jumps Resolve found: the
// hops of the target's own list are the last ones (the first hop's own
// jumps come before it).
func jumpSpec(t *testing.T, e Endpoint, want string) string {
	t.Helper()
	hops, err := parseProxyJump(want)
	if err != nil || len(e.Jumps) < len(hops) {
		return "<" + strconv.Itoa(len(e.Jumps)) + " jumps>"
	}
	var parts []string
	for i, j := range e.Jumps[len(e.Jumps)-len(hops):] {
		s := j.Host
		if hops[i].User != "" {
			s = j.User + "@" + s
		}
		if hops[i].Port != 0 {
			s += ":" + strconv.Itoa(j.Port)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ",")
}

func TestOracle(t *testing.T) {
	if len(oracleCases) < 30 {
		t.Fatalf("%d scenarios, want at least 30", len(oracleCases))
	}
	ssh, privateHosts := oracleSSH(t)
	home, err := passwdHome()
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "/tmp/oracle-agent.sock")
	for _, c := range oracleCases {
		t.Run(c.name, func(t *testing.T) {
			canonical := strings.Contains(c.config, "CanonicalizeHostname yes")
			if canonical && !privateHosts {
				t.Skip("needs a private /etc/hosts (no DNS in tests)")
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			for name, text := range c.files {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(text), 0o644)
			}
			cfg := filepath.Join(dir, "config")
			os.WriteFile(cfg, []byte(strings.ReplaceAll(c.config, "{{dir}}", dir)), 0o644)
			want := fromSSHG(t, ssh, cfg, c, home)
			if want.User == "" || want.Address == "" {
				t.Fatalf("ssh -G said nothing useful: %+v", want)
			}
			if canonical && want.Address != "can.fleet.test" {
				t.Errorf("ssh did not canonicalise: %s", want.Address)
			}
			readers := []string{ssh}
			if c.own {
				readers = append(readers, "none")
			}
			for _, bin := range readers {
				e, err := Resolve(Options{ConfigFiles: []string{cfg}, SSHBinary: bin}, Target{Host: c.host, User: c.user, Port: c.port})
				if err != nil {
					t.Errorf("Resolve (ssh binary %s): %v", bin, err)
					continue
				}
				got := fromEndpoint(e, c)
				if want.Jumps != "" {
					got.Jumps = jumpSpec(t, e, want.Jumps)
				} else if len(e.Jumps) > 0 {
					got.Jumps = "<" + strconv.Itoa(len(e.Jumps)) + " jumps>"
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Resolve (ssh binary %s):\n got %+v\nwant %+v (ssh -G)", bin, got, want)
				}
			}
		})
	}
}

// TestOwnReaderSkipsUnknownMatch: a Match criterion fleet's own reader does
// not know skips that block with a warning; the rest of the file applies.
func TestOwnReaderSkipsUnknownMatch(t *testing.T) {
	cfg := writeConfig(t, "Match localnetwork 10.0.0.0/8\n  User skipped\nHost h\n  User applied\n")
	var warnings []string
	e, err := Resolve(Options{ConfigFiles: cfg, SSHBinary: "none", Warn: func(s string) { warnings = append(warnings, s) }}, Target{Host: "h"})
	if err != nil || e.User != "applied" {
		t.Fatalf("User %q, err %v", e.User, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "Match localnetwork") {
		t.Errorf("warnings %q", warnings)
	}
}
