package remote

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/shell"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestUnknownHost(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.knownHosts, nil, 0o600)
	e := f.endpoint()
	_, err := Dial(context.Background(), e)
	var ue *UnknownHostError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want *UnknownHostError", err, err)
	}
	hk := f.srv.hostKeys[0].pub
	name := "[127.0.0.1]:" + strconv.Itoa(f.srv.port)
	if ue.Host != name || ue.Fingerprint != ssh.FingerprintSHA256(hk) || !strings.HasPrefix(ue.Fingerprint, "SHA256:") || ue.File != f.knownHosts {
		t.Errorf("UnknownHostError = %+v", ue)
	}
	if want := name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hk))); ue.KeyLine != want {
		t.Errorf("KeyLine = %q, want %q", ue.KeyLine, want)
	}
	if !strings.Contains(err.Error(), ue.KeyLine) {
		t.Errorf("message lacks the line: %v", err)
	}
	// Adding the line as told makes it known.
	os.WriteFile(f.knownHosts, []byte(ue.KeyLine+"\n"), 0o600)
	dial(t, e)
	// "ask" from config behaves as yes (fleet never prompts) — via Resolve.
}

func TestAcceptNew(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("hashed=%v", hashed), func(t *testing.T) {
			f := newFixture(t)
			e := f.endpoint()
			kh := filepath.Join(f.dir, "new", "dir", "known_hosts")
			e.KnownHostsFiles = []string{kh, filepath.Join(f.dir, "other_known_hosts")}
			e.StrictHostKeyChecking = "accept-new"
			e.HashKnownHosts = hashed
			// Parallel first dials record the key once.
			if errs := inParallel(5, func(int) error {
				c, err := Dial(context.Background(), e)
				if err == nil {
					c.Close()
				}
				return err
			}); len(errs) > 0 {
				t.Fatal(errs[0])
			}
			b, err := os.ReadFile(kh)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) != 1 {
				t.Fatalf("known_hosts has %d lines:\n%s", len(lines), b)
			}
			if hashed != strings.HasPrefix(lines[0], "|1|") {
				t.Errorf("line %q, hashed=%v", lines[0], hashed)
			}
			if !hashed && !strings.HasPrefix(lines[0], "[127.0.0.1]:"+strconv.Itoa(f.srv.port)+" ssh-ed25519 ") {
				t.Errorf("line %q", lines[0])
			}
			if fi, _ := os.Stat(kh); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
			// Now known: strict checking passes.
			e.StrictHostKeyChecking = "yes"
			dial(t, e)
		})
	}
}

func TestChangedHostKey(t *testing.T) {
	for _, strict := range []string{"yes", "accept-new"} {
		t.Run(strict, func(t *testing.T) {
			f := newFixture(t)
			other := newKey(t, "ed25519")
			content := "# comment\n\n" + string(knownHostsLine(f.srv.port, other.pub))
			os.WriteFile(f.knownHosts, []byte(content), 0o600)
			e := f.endpoint()
			e.StrictHostKeyChecking = strict
			_, err := Dial(context.Background(), e)
			var ce *ChangedHostKeyError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *ChangedHostKeyError", err, err)
			}
			if ce.File != f.knownHosts || ce.Line != 3 || ce.Fingerprint != ssh.FingerprintSHA256(f.srv.hostKeys[0].pub) ||
				ce.KnownFingerprint != ssh.FingerprintSHA256(other.pub) || ce.Host != "[127.0.0.1]:"+strconv.Itoa(f.srv.port) {
				t.Errorf("ChangedHostKeyError = %+v", ce)
			}
			if hint := "ssh-keygen -R '" + ce.Host + "' -f " + shell.Quote(ce.File) + ")"; !strings.HasSuffix(err.Error(), hint) {
				t.Errorf("error %q does not end in %q", err, hint)
			}
			if b, _ := os.ReadFile(f.knownHosts); string(b) != content {
				t.Errorf("known_hosts modified:\n%s", b)
			}
		})
	}
}

func TestHashedKnownHosts(t *testing.T) {
	f := newFixture(t)
	name := "[127.0.0.1]:" + strconv.Itoa(f.srv.port)
	line := knownhosts.Line([]string{knownhosts.HashHostname(name)}, f.srv.hostKeys[0].pub)
	os.WriteFile(f.knownHosts, []byte(line+"\n"), 0o600)
	dial(t, f.endpoint())

	// A hashed entry for a different key is a change, too.
	line = knownhosts.Line([]string{knownhosts.HashHostname(name)}, newKey(t, "ed25519").pub)
	os.WriteFile(f.knownHosts, []byte(line+"\n"), 0o600)
	var ce *ChangedHostKeyError
	if _, err := Dial(context.Background(), f.endpoint()); !errors.As(err, &ce) {
		t.Errorf("err = %v", err)
	}
}

func TestKnownKeyTypeIsNegotiated(t *testing.T) {
	// The server has ECDSA and ed25519 keys; whichever one is known must
	// be the one asked for.
	ec, ed := newKey(t, "ecdsa"), newKey(t, "ed25519")
	f := newFixture(t, func(s *testServer) { s.hostKeys = []testKey{ec, ed} })
	for _, k := range []testKey{ec, ed} {
		os.WriteFile(f.knownHosts, knownHostsLine(f.srv.port, k.pub), 0o600)
		dial(t, f.endpoint())
	}
	// Unknown host: ed25519 is preferred, as by OpenSSH.
	os.WriteFile(f.knownHosts, nil, 0o600)
	var ue *UnknownHostError
	if _, err := Dial(context.Background(), f.endpoint()); !errors.As(err, &ue) || !strings.Contains(ue.KeyLine, "ssh-ed25519") {
		t.Errorf("err = %v", err)
	}
}

func TestRevokedHostKey(t *testing.T) {
	f := newFixture(t)
	hk := f.srv.hostKeys[0].pub
	os.WriteFile(f.knownHosts, []byte("@revoked * "+string(ssh.MarshalAuthorizedKey(hk))), 0o600)
	var re *RevokedHostKeyError
	if _, err := Dial(context.Background(), f.endpoint()); !errors.As(err, &re) || re.Line != 1 {
		t.Errorf("err = %v", err)
	}
}

func TestHostKeyAliasAndGlobalFiles(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.knownHosts, nil, 0o600)
	global := filepath.Join(f.dir, "ssh_known_hosts")
	os.WriteFile(global, []byte("web-alias "+string(ssh.MarshalAuthorizedKey(f.srv.hostKeys[0].pub))), 0o644)
	e := f.endpoint()
	e.GlobalKnownHostsFiles = []string{global}
	e.HostKeyAlias = "web-alias"
	dial(t, e)
	// Without the alias the host is unknown, and the error says where to add it.
	e.HostKeyAlias = ""
	var ue *UnknownHostError
	if _, err := Dial(context.Background(), e); !errors.As(err, &ue) || ue.File != f.knownHosts {
		t.Errorf("err = %v", err)
	}
}

// The known_hosts name of a host on port 22 has no brackets.
func TestHostKeyNamePort22(t *testing.T) {
	k := newKey(t, "ed25519")
	dir := t.TempDir()
	e := Endpoint{Address: "example.com", Port: 22, KnownHostsFiles: []string{filepath.Join(dir, "kh")}, StrictHostKeyChecking: "yes"}
	h := newHostKeyChecker(e)
	cb, err := h.load()
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	err = h.check(cb, e.knownHostsAddr(), remote, k.pub)
	var ue *UnknownHostError
	if !errors.As(err, &ue) || ue.Host != "example.com" || !strings.HasPrefix(ue.KeyLine, "example.com ssh-ed25519 ") {
		t.Fatalf("err = %v", err)
	}
	e.StrictHostKeyChecking = "accept-new"
	h = newHostKeyChecker(e)
	if err := h.check(cb, e.knownHostsAddr(), remote, k.pub); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(e.KnownHostsFiles[0])
	if string(b) != ue.KeyLine+"\n" {
		t.Errorf("recorded %q, want %q", b, ue.KeyLine)
	}
	// IPv6 with a port.
	e = Endpoint{Address: "::1", Port: 2222}
	if got := knownhosts.Normalize(e.knownHostsAddr()); got != "[::1]:2222" {
		t.Errorf("Normalize = %q", got)
	}
}

func TestAppendLineAfterUnterminatedLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kh")
	os.WriteFile(p, []byte("a ssh-ed25519 AAAA"), 0o600)
	if err := appendLine(p, "b x\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "a ssh-ed25519 AAAA\nb x\n" {
		t.Errorf("%q", b)
	}
}

// TestHostCertificateFallsBackToPlainKey: a host that presents a
// certificate no @cert-authority line covers is checked by its plain key,
// as ssh does, rather than refused.
func TestHostCertificateFallsBackToPlainKey(t *testing.T) {
	ca, hk := newKey(t, "ed25519"), newKey(t, "ed25519")
	cert := &ssh.Certificate{Key: hk.pub, CertType: ssh.HostCert, KeyId: "host",
		ValidPrincipals: []string{"other.example"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca.signer); err != nil {
		t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(cert, hk.signer)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(s *testServer) { s.hostKeys = []testKey{{signer: cs, pub: cert}} })
	caLine := "@cert-authority *.example " + string(ssh.MarshalAuthorizedKey(ca.pub))
	os.WriteFile(f.knownHosts, []byte(caLine+string(knownHostsLine(f.srv.port, hk.pub))), 0o600)
	c := dial(t, f.endpoint())
	c.Close()

	// Without the plain key the host is unknown, as with ssh.
	os.WriteFile(f.knownHosts, []byte(caLine), 0o600)
	var ue *UnknownHostError
	if _, err := Dial(context.Background(), f.endpoint()); !errors.As(err, &ue) {
		t.Errorf("err = %v, want *UnknownHostError", err)
	}
}
