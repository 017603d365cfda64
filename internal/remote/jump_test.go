package remote

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

const jumpConfig = `
Host target
  HostName 10.0.0.9
  ProxyJump j1,deploy@j2:2222

Host j1
  HostName 192.0.2.1
  User jumper
  ProxyJump j0

Host j0
  HostName 192.0.2.0
  Port 2200

# Not the first hop of target's list: its own ProxyJump is not followed
# (ssh passes it -J).
Host j2
  HostName 192.0.2.2
  ProxyJump nowhere

Host loop1
  ProxyJump loop2
Host loop2
  ProxyJump j0,loop1

Host self
  ProxyJump self

Host direct
  ProxyJump none

Host uri
  ProxyJump ssh://u@[2001:db8::1]:2022,plain,[2001:db8::2],h:23

Host badjump
  ProxyJump a,@b

Host badport
  ProxyJump a:0

Host retries
  ConnectionAttempts 5

Host badretries
  ConnectionAttempts none

Host *
  ProxyJump none
  IdentityFile /keys/id
  UserKnownHostsFile /kh
`

func writeConfig(t *testing.T, text string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{p}
}

func TestResolveProxyJump(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	o := withOwnReader(Options{ConfigFiles: writeConfig(t, jumpConfig), SudoPassword: Secret("pw")})
	e, err := Resolve(o, Target{Host: "target", User: "me"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range e.Jumps {
		got = append(got, j.Host+"="+j.String())
		if len(j.Jumps) != 0 || j.SudoPassword != nil {
			t.Errorf("jump %s has Jumps %v, SudoPassword %v", j.Host, j.Jumps, j.SudoPassword)
		}
		if len(j.IdentityFiles) != 1 || j.IdentityFiles[0] != "/keys/id" || j.KnownHostsFiles[0] != "/kh" {
			t.Errorf("jump %s not resolved through the config: %+v %v", j.Host, j.IdentityFiles, j.KnownHostsFiles)
		}
	}
	want := "j0=root@192.0.2.0:2200 j1=jumper@192.0.2.1:22 j2=deploy@192.0.2.2:2222"
	if strings.Join(got, " ") != want {
		t.Errorf("jumps %s, want %s", strings.Join(got, " "), want)
	}
	if e.String() != "me@10.0.0.9:22" || string(e.SudoPassword) != "pw" {
		t.Errorf("target %s", e)
	}

	e, err = Resolve(o, Target{Host: "uri"})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, j := range e.Jumps {
		got = append(got, j.String())
	}
	if want := "u@[2001:db8::1]:2022 root@plain:22 root@[2001:db8::2]:22 root@h:23"; strings.Join(got, " ") != want {
		t.Errorf("uri jumps %s, want %s", strings.Join(got, " "), want)
	}

	for _, h := range []string{"direct", "j0"} {
		if e, err := Resolve(o, Target{Host: h}); err != nil || len(e.Jumps) != 0 {
			t.Errorf("%s: jumps %v, err %v", h, e.Jumps, err)
		}
	}

	// loop2's second hop is loop1, reached through j0 with no ProxyJump
	// of its own (as ssh -J j0 would): that ends, it is no loop.
	e, err = Resolve(o, Target{Host: "loop1"})
	got = nil
	for _, j := range e.Jumps {
		got = append(got, j.Host)
	}
	if err != nil || strings.Join(got, " ") != "j0 loop1 loop2" {
		t.Errorf("loop1: jumps %v, err %v", got, err)
	}

	for _, bad := range []struct{ host, want string }{
		{"self", "ProxyJump loop: self -> self"},
		{"badjump", "empty user name"},
		{"badport", "invalid port"},
		{"badretries", "ConnectionAttempts"},
	} {
		_, err := Resolve(o, Target{Host: bad.host})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.host, err, bad.want)
		}
	}

	// A real loop through first hops, the way it comes about with a
	// catch-all ProxyJump.
	o2 := withOwnReader(Options{ConfigFiles: writeConfig(t, "Host a\n  ProxyJump b\nHost b\n  ProxyJump c\nHost *\n  ProxyJump a\n")})
	_, err = Resolve(o2, Target{Host: "x"})
	if err == nil || !strings.Contains(err.Error(), "ProxyJump loop: x -> a -> b -> c -> a") || !strings.Contains(err.Error(), "ProxyJump none") {
		t.Errorf("loop: %v", err)
	}
	o2.ConfigFiles = writeConfig(t, "Host bastion\n  ProxyJump none\nHost *\n  ProxyJump bastion\n")
	if e, err := Resolve(o2, Target{Host: "x"}); err != nil || len(e.Jumps) != 1 || e.Jumps[0].Host != "bastion" {
		t.Errorf("bastion with ProxyJump none: %v %v", e.Jumps, err)
	}

	// ConnectionAttempts: Options, then config, else Dial's default.
	if e, _ := Resolve(o, Target{Host: "retries"}); e.ConnectionAttempts != 5 {
		t.Errorf("config ConnectionAttempts: %d", e.ConnectionAttempts)
	}
	o.ConnectionAttempts = 2
	if e, _ := Resolve(o, Target{Host: "retries"}); e.ConnectionAttempts != 2 {
		t.Errorf("Options ConnectionAttempts: %d", e.ConnectionAttempts)
	}
	if e, _ := Resolve(o, Target{Host: "target"}); e.Jumps[0].ConnectionAttempts != 2 {
		t.Errorf("jump ConnectionAttempts: %d", e.Jumps[0].ConnectionAttempts)
	}
}

// jumpFixtures returns n servers that allow direct-tcpip (jump hosts) and
// a final target server, each with its own client key and known_hosts.
func jumpChain(t *testing.T, n int) (jumps []*fixture, target *fixture, e Endpoint) {
	t.Helper()
	for i := 0; i < n; i++ {
		jumps = append(jumps, newFixture(t, func(s *testServer) { s.forwarding = true }))
	}
	target = newFixture(t)
	e = target.endpoint()
	for i, j := range jumps {
		je := j.endpoint()
		je.Host = "jump" + strconv.Itoa(i+1)
		e.Jumps = append(e.Jumps, je)
	}
	return jumps, target, e
}

func TestDialThroughJumpHosts(t *testing.T) {
	jumps, target, e := jumpChain(t, 2)
	c := dial(t, e)
	out, err := c.Output(context.Background(), "echo", "through")
	if err != nil || string(out) != "through\n" {
		t.Fatalf("%q %v", out, err)
	}
	// jump1 was asked for jump2, jump2 for the target; each server saw
	// one connection.
	if f := jumps[0].srv.forwarded(); len(f) != 1 || f[0] != "127.0.0.1:"+strconv.Itoa(jumps[1].srv.port) {
		t.Errorf("jump1 forwarded %v", f)
	}
	if f := jumps[1].srv.forwarded(); len(f) != 1 || f[0] != "127.0.0.1:"+strconv.Itoa(target.srv.port) {
		t.Errorf("jump2 forwarded %v", f)
	}
	for i, s := range []*testServer{jumps[0].srv, jumps[1].srv, target.srv} {
		if s.connections() != 1 || s.liveConns() != 1 {
			t.Errorf("server %d: %d connections, %d live", i, s.connections(), s.liveConns())
		}
	}
	// Sessions in parallel over the chain.
	parallelSessions(t, c, 20)

	// Close tears down the whole chain.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "chain closed", func() bool {
		return jumps[0].srv.liveConns() == 0 && jumps[1].srv.liveConns() == 0 && target.srv.liveConns() == 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJumpHostLost(t *testing.T) {
	jumps, target, e := jumpChain(t, 1)
	c := dial(t, e)
	if _, err := c.Output(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}
	jumps[0].srv.killConns()
	err := c.Run(context.Background(), Cmd{Argv: []string{"sleep", "5"}})
	if !errors.Is(err, ErrConnLost) {
		t.Fatalf("err = %v, want ErrConnLost", err)
	}
	waitFor(t, "target connection gone", func() bool { return target.srv.liveConns() == 0 })
}

func TestJumpHostUnknownKey(t *testing.T) {
	jumps, target, e := jumpChain(t, 2)
	os.WriteFile(jumps[1].knownHosts, nil, 0o600)
	_, err := Dial(context.Background(), e)
	var je *JumpError
	var ue *UnknownHostError
	if !errors.As(err, &je) || !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want a *JumpError wrapping an *UnknownHostError", err, err)
	}
	if je.Jump != "jump2" || je.Host != "testhost" || !strings.Contains(err.Error(), "via jump host jump2") {
		t.Errorf("JumpError = %+v: %v", je, err)
	}
	if ue.Host != "[127.0.0.1]:"+strconv.Itoa(jumps[1].srv.port) {
		t.Errorf("UnknownHostError names %s", ue.Host)
	}
	// Not retried, nothing reached the target, and jump1's connection
	// was closed.
	if n := jumps[0].srv.connections(); n != 1 {
		t.Errorf("jump1 saw %d connections, want 1 (no retry)", n)
	}
	if n := target.srv.connections(); n != 0 {
		t.Errorf("target saw %d connections", n)
	}
	waitFor(t, "jump1 closed", func() bool { return jumps[0].srv.liveConns() == 0 })

	// The target's own unknown key is the target's error, not a jump's.
	os.WriteFile(jumps[1].knownHosts, knownHostsLine(jumps[1].srv.port, jumps[1].srv.hostKeys[0].pub), 0o600)
	os.WriteFile(target.knownHosts, nil, 0o600)
	_, err = Dial(context.Background(), e)
	if errors.As(err, &je) || !errors.As(err, &ue) || !strings.Contains(err.Error(), "via jump2") {
		t.Errorf("target unknown: %v", err)
	}
}

func TestJumpHostCannotReachTarget(t *testing.T) {
	defer setBackoff(10*time.Millisecond, 20*time.Millisecond)()
	jumps, target, e := jumpChain(t, 1)
	target.srv.close() // nothing listens there any more
	e.ConnectionAttempts = 2
	_, err := Dial(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "the jump host could not") || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
	if n := jumps[0].srv.connections(); n != 2 {
		t.Errorf("jump host saw %d connections, want 2 (one per attempt)", n)
	}
	waitFor(t, "jump closed", func() bool { return jumps[0].srv.liveConns() == 0 })
}

func setBackoff(d, max time.Duration) func() {
	od, om := retryBackoff, retryBackoffMax
	retryBackoff, retryBackoffMax = d, max
	return func() { retryBackoff, retryBackoffMax = od, om }
}

func TestDialRetries(t *testing.T) {
	// sshd over MaxStartups drops connections before the banner.
	f := newFixture(t, func(s *testServer) { s.dropFirst = 2 })
	e := f.endpoint()
	start := time.Now()
	c := dial(t, e)
	took := time.Since(start)
	c.Close()
	if n := f.srv.connections(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	// 250ms + 500ms of backoff.
	if took < 700*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %v, want about 750ms of backoff", took)
	}

	defer setBackoff(10*time.Millisecond, 20*time.Millisecond)()
	f = newFixture(t, func(s *testServer) { s.dropFirst = 5 })
	e = f.endpoint()
	e.ConnectionAttempts = 2
	_, err := Dial(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Errorf("err = %v", err)
	}

	// Refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	e.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	e.ConnectionAttempts = 4
	_, err = Dial(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("err = %v", err)
	}

	// Host key and authentication failures are never retried.
	f = newFixture(t)
	e = f.endpoint()
	os.WriteFile(f.knownHosts, nil, 0o600)
	var ue *UnknownHostError
	if _, err := Dial(context.Background(), e); !errors.As(err, &ue) || strings.Contains(err.Error(), "attempt") {
		t.Errorf("err = %v", err)
	}
	f2 := newFixture(t)
	e = f2.endpoint()
	e.IdentityFiles = []string{newKey(t, "ed25519").writeIdentity(t, t.TempDir(), "id", "")}
	var ae *AuthError
	if _, err := Dial(context.Background(), e); !errors.As(err, &ae) {
		t.Errorf("err = %v", err)
	}
	if f.srv.connections() != 1 || f2.srv.connections() != 1 {
		t.Errorf("connections %d, %d: want 1 each (no retries)", f.srv.connections(), f2.srv.connections())
	}
}

func TestDialRetryCancel(t *testing.T) {
	labtest.RequireNetns(t)
	defer setBackoff(time.Minute, time.Minute)()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	k := newKey(t, "ed25519")
	e := Endpoint{Address: "127.0.0.1", Port: port, IdentityFiles: []string{k.writeIdentity(t, t.TempDir(), "id", "")}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := Dial(ctx, e)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "after 1 attempt") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel during the backoff took %v", d)
	}
}

func TestHandshakeLimit(t *testing.T) {
	f := newFixture(t)
	old := MaxConcurrentHandshakes
	MaxConcurrentHandshakes = 3
	defer func() { MaxConcurrentHandshakes = old }()
	handshakes.mu.Lock()
	handshakes.peak = 0
	handshakes.mu.Unlock()
	for _, err := range inParallel(30, func(int) error {
		c, err := Dial(context.Background(), f.endpoint())
		if err == nil {
			_, err = c.Output(context.Background(), "true")
			c.Close()
		}
		return err
	}) {
		t.Error(err)
	}
	handshakes.mu.Lock()
	peak, active := handshakes.peak, handshakes.active
	handshakes.mu.Unlock()
	if peak > 3 || peak < 2 || active != 0 {
		t.Errorf("peak %d concurrent handshakes (limit 3), %d active now", peak, active)
	}
	// A cancelled wait for a turn returns at once.
	MaxConcurrentHandshakes = 1
	release, _ := handshakes.acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, f.endpoint())
	release()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for a turn") {
		t.Errorf("err = %v", err)
	}
}
