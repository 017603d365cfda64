package remote

// The test fixtures: keys, a server with a client authorised on it, and
// helpers to dial it and run commands on it.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testKey is a key pair usable as host key or identity.
type testKey struct {
	priv   crypto.Signer
	signer ssh.Signer
	pub    ssh.PublicKey
}

func newKey(t testing.TB, kind string) testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, signer: s, pub: s.PublicKey()}
}

var encrypted struct {
	once sync.Once
	key  testKey
	pem  []byte
}

// encryptedKey returns an RSA key and its OpenSSH encoding encrypted with
// passphrase "secret"; made once, as the bcrypt KDF is slow under -race.
func encryptedKey(t testing.TB) (testKey, []byte) {
	encrypted.once.Do(func() {
		k := newKey(t, "rsa")
		block, err := ssh.MarshalPrivateKeyWithPassphrase(k.priv, "test@fleet", []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		encrypted.key, encrypted.pem = k, pem.EncodeToMemory(block)
	})
	if encrypted.pem == nil {
		t.Fatal("no encrypted key")
	}
	return encrypted.key, encrypted.pem
}

// writeEncryptedIdentity writes encryptedKey's key to dir/name.
func writeEncryptedIdentity(t testing.TB, dir, name string) (testKey, string) {
	k, b := encryptedKey(t)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return k, p
}

// writeIdentity writes k in OpenSSH format (encrypted if passphrase is
// non-empty) with a .pub beside it, and returns the path.
func (k testKey) writeIdentity(t testing.TB, dir, name, passphrase string) string {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(k.priv, "test@fleet")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(k.priv, "test@fleet", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".pub", ssh.MarshalAuthorizedKey(k.pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fixture is a server plus a client identity authorised on it and a
// known_hosts file holding its host key.
type fixture struct {
	srv        *testServer
	dir        string
	key        testKey
	keyFile    string
	knownHosts string
}

func newFixture(t testing.TB, opts ...serverOpt) *fixture {
	t.Helper()
	srv := newTestServer(t, opts...)
	dir := t.TempDir()
	f := &fixture{srv: srv, dir: dir, key: newKey(t, "ed25519")}
	f.keyFile = f.key.writeIdentity(t, dir, "id_ed25519", "")
	srv.authorize(f.key.pub)
	f.knownHosts = filepath.Join(dir, "known_hosts")
	var lines []byte
	for _, hk := range srv.hostKeys {
		lines = append(lines, knownHostsLine(srv.port, hk.pub)...)
	}
	if err := os.WriteFile(f.knownHosts, lines, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func knownHostsLine(port int, pub ssh.PublicKey) []byte {
	return []byte("[127.0.0.1]:" + strconv.Itoa(port) + " " + string(ssh.MarshalAuthorizedKey(pub)))
}

func (f *fixture) endpoint() Endpoint {
	return Endpoint{
		Host:                  "testhost",
		Address:               "127.0.0.1",
		User:                  "root",
		Port:                  f.srv.port,
		IdentityFiles:         []string{f.keyFile},
		KnownHostsFiles:       []string{f.knownHosts},
		StrictHostKeyChecking: "yes",
		ConnectTimeout:        5 * time.Second,
	}
}

// inParallel runs f(0), …, f(n-1) at once and returns the errors they
// returned, in order.
func inParallel(n int, f func(i int) error) []error {
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = f(i) })
	}
	wg.Wait()
	var errs []error
	for _, err := range results {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// parallelSessions runs n commands at once on c, each in a session of its
// own for a while, and checks what each printed.
func parallelSessions(t *testing.T, c *Conn, n int) {
	t.Helper()
	for _, err := range inParallel(n, func(i int) error {
		want := fmt.Sprintf("session %d", i)
		out, err := c.Output(context.Background(), "sh", "-c", `sleep 0.05; echo "$1"`, "sh", want)
		if err == nil && string(out) != want+"\n" {
			err = fmt.Errorf("session %d printed %q", i, out)
		}
		return err
	}) {
		t.Error(err)
	}
}

func dial(t testing.TB, e Endpoint) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, e)
	if err != nil {
		t.Fatalf("Dial(%s): %v", e, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runUntilLost runs `sleep secs` on c, cuts the connection after settle,
// and checks that Run and c.Err report ErrConnLost within wait.
func runUntilLost(t *testing.T, c *Conn, secs int, settle time.Duration, cut func(), wait time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), Cmd{Argv: []string{"sleep", strconv.Itoa(secs)}}) }()
	time.Sleep(settle)
	cut()
	select {
	case err := <-done:
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("err = %v, want ErrConnLost", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not notice the lost connection")
	}
	if !errors.Is(c.Err(), ErrConnLost) {
		t.Errorf("Err() = %v", c.Err())
	}
}
