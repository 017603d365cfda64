package remote

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"golang.org/x/crypto/ssh/agent"
)

func TestDialAuth(t *testing.T) {
	for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			k := newKey(t, kind)
			f.srv.authorize(k.pub)
			e := f.endpoint()
			e.IdentityFiles = []string{filepath.Join(f.dir, "missing"), k.writeIdentity(t, f.dir, "id_"+kind, "")}
			c := dial(t, e)
			if out, err := c.Output(context.Background(), "echo", kind); err != nil || string(out) != kind+"\n" {
				t.Fatal(out, err)
			}
		})
	}
}

func TestDialEncryptedKeyWithoutAgent(t *testing.T) {
	f := newFixture(t)
	k, enc := writeEncryptedIdentity(t, f.dir, "id_encrypted")
	f.srv.authorize(k.pub)
	e := f.endpoint()
	e.IdentityFiles = []string{enc}
	start := time.Now()
	_, err := Dial(context.Background(), e)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *AuthError", err, err)
	}
	if !strings.Contains(err.Error(), enc) || !strings.Contains(err.Error(), "passphrase") || len(ae.Encrypted) != 1 {
		t.Errorf("error does not name the encrypted file: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("slow")
	}
	if f.srv.connections() != 0 {
		t.Errorf("connected although no key was usable")
	}

	// With a usable but unauthorised key besides, the failure still names it.
	other := newKey(t, "ed25519")
	e.IdentityFiles = []string{enc, other.writeIdentity(t, f.dir, "id_other", "")}
	_, err = Dial(context.Background(), e)
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), enc) || len(ae.Tried) != 1 {
		t.Errorf("err = %v", err)
	}
}

func startAgent(t testing.TB, keys ...testKey) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k.priv, Comment: "agentkey"}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				agent.ServeAgent(kr, c)
			}()
		}
	}()
	return sock
}

func TestDialAgent(t *testing.T) {
	f := newFixture(t)
	// The file is encrypted (and has no .pub), but the agent holds the key.
	k, enc := writeEncryptedIdentity(t, f.dir, "id_rsa")
	f.srv.authorize(k.pub)
	e := f.endpoint()
	e.IdentityFiles = []string{enc}
	e.AgentSocket = startAgent(t, k)
	c := dial(t, e)
	if _, err := c.Output(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}

	// IdentitiesOnly: agent keys not among the identity files are not offered.
	a := newKey(t, "ed25519")
	f.srv.authorize(a.pub)
	e.AgentSocket = startAgent(t, a)
	e.IdentityFiles = []string{newKey(t, "ed25519").writeIdentity(t, f.dir, "id_unauthorised", "")}
	e.IdentitiesOnly = true
	if _, err := Dial(context.Background(), e); err == nil {
		t.Error("IdentitiesOnly: the agent's other key was offered")
	}
	e.IdentitiesOnly = false
	dial(t, e)

	// An agent socket that does not work is not fatal if a file works.
	e.AgentSocket = filepath.Join(f.dir, "no-agent.sock")
	e.IdentityFiles = []string{f.keyFile}
	dial(t, e)
}

func TestDialTimeoutAndContext(t *testing.T) {
	labtest.RequireNetns(t)
	// A listener that never answers the SSH banner.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	k := newKey(t, "ed25519")
	// One attempt: retries have tests of their own (TestDialRetries).
	e := Endpoint{Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, ConnectTimeout: 300 * time.Millisecond, ConnectionAttempts: 1,
		IdentityFiles: []string{k.writeIdentity(t, t.TempDir(), "id", "")}, KnownHostsFiles: []string{"/nonexistent"}}
	start := time.Now()
	_, err = Dial(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}

	e.ConnectTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = Dial(ctx, e)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ctx cancel took %s", d)
	}

	// Nothing listening.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln2.Addr().(*net.TCPAddr).Port
	ln2.Close()
	e.Port = port
	if _, err := Dial(context.Background(), e); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v", err)
	}
}

// TestProxyCommandFails: a ProxyCommand that exits says so, with its
// stderr, and is not retried.
func TestProxyCommandFails(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	e := Endpoint{Host: "viacmd", Address: "192.0.2.1", ConnectionAttempts: 3, IdentityFiles: []string{writeTestKey(t, dir)},
		ProxyCommand: "echo run >> " + count + "; echo 'no route to bastion' >&2; exit 3"}
	_, err := Dial(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "no route to bastion") || !strings.Contains(err.Error(), "ProxyCommand") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "run") != 1 {
		t.Errorf("ProxyCommand ran %d times, want once", strings.Count(string(b), "run"))
	}
}

func writeTestKey(t *testing.T, dir string) string {
	t.Helper()
	return newKey(t, "ed25519").writeIdentity(t, dir, "id", "")
}

// TestDialAnswered: answered is called once the server sends its first
// bytes — also when the login then fails — and never for a port where
// nothing listens or a listener that never speaks SSH.
func TestDialAnswered(t *testing.T) {
	f := newFixture(t)
	good := newKey(t, "ed25519")
	f.srv.authorize(good.pub)
	bad := newKey(t, "ed25519") // not authorized
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	for _, tc := range []struct {
		name     string
		endpoint func() Endpoint
		answered bool
		err      string
	}{
		{"logs in", func() Endpoint {
			e := f.endpoint()
			e.IdentityFiles = []string{good.writeIdentity(t, t.TempDir(), "id", "")}
			return e
		}, true, ""},
		{"login refused", func() Endpoint {
			e := f.endpoint()
			e.IdentityFiles = []string{bad.writeIdentity(t, t.TempDir(), "id", "")}
			return e
		}, true, "unable to authenticate"},
		{"nothing listens", func() Endpoint {
			e := f.endpoint()
			e.Port = closedPort
			return e
		}, false, "refused"},
		{"never speaks SSH", func() Endpoint {
			e := f.endpoint()
			e.Port, e.ConnectTimeout = silent.Addr().(*net.TCPAddr).Port, 300*time.Millisecond
			return e
		}, false, "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.endpoint()
			e.ConnectionAttempts = 1
			var calls atomic.Int32
			c, err := DialAnswered(context.Background(), e, func() { calls.Add(1) })
			if c != nil {
				c.Close()
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
			if want := map[bool]int32{true: 1, false: 0}[tc.answered]; calls.Load() != want {
				t.Errorf("answered %d times, want %d", calls.Load(), want)
			}
		})
	}
}
