package remote

// This file checks host keys against the known_hosts files as OpenSSH
// does (hashed names, @revoked, @cert-authority, HostKeyAlias), records
// unknown ones for accept-new, and says in its errors how to fix a refusal.

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/fleet-deploy/fleet/internal/shell"
)

// UnknownHostError is returned by Dial when the host's key is in no
// known_hosts file and StrictHostKeyChecking is "yes".
type UnknownHostError struct {
	Host        string // as known_hosts names it: "host", or "[host]:port" when port≠22
	Fingerprint string // SHA256:… of the key the server offered
	KeyLine     string // the known_hosts line to add, as ssh-keyscan prints it
	File        string // where ssh would record it (the first user known_hosts file)
}

func (e *UnknownHostError) Error() string {
	where := "a known_hosts file"
	if e.File != "" {
		where = e.File
	}
	return fmt.Sprintf("host key of %s is not known (%s); if that is the host's key, add this line to %s:\n%s",
		e.Host, e.Fingerprint, where, e.KeyLine)
}

// ChangedHostKeyError is returned by Dial when the server offers a key that
// differs from the one known_hosts records for it. It is always fatal.
type ChangedHostKeyError struct {
	Host             string // as known_hosts names it
	File             string // the known_hosts file holding the conflicting entry
	Line             int    // its line number
	Fingerprint      string // SHA256:… of the key the server offered
	KnownFingerprint string // SHA256:… of the key on File:Line
}

func (e *ChangedHostKeyError) Error() string {
	return fmt.Sprintf("REMOTE HOST IDENTIFICATION HAS CHANGED for %s: it offered %s but %s:%d has %s; refusing to connect "+
		"(someone may be intercepting the connection; if the host was reinstalled, remove the old entry with: ssh-keygen -R %s -f %s)",
		e.Host, e.Fingerprint, e.File, e.Line, e.KnownFingerprint, shell.Quote(e.Host), shell.Quote(e.File))
}

// RevokedHostKeyError is returned when the server's key is marked @revoked.
type RevokedHostKeyError struct {
	Host, File  string
	Line        int
	Fingerprint string
}

func (e *RevokedHostKeyError) Error() string {
	return fmt.Sprintf("host key %s of %s is revoked (%s:%d); refusing to connect", e.Fingerprint, e.Host, e.File, e.Line)
}

// knownHostsMu serialises reading-then-appending known_hosts files within
// this process (many hosts are dialled in parallel).
var knownHostsMu sync.Mutex

// hostKeyChecker verifies host keys for one endpoint.
type hostKeyChecker struct {
	ep    Endpoint
	files []string // existing known_hosts files, user ones first
}

func newHostKeyChecker(e Endpoint) *hostKeyChecker {
	return &hostKeyChecker{ep: e}
}

func (h *hostKeyChecker) existingFiles() []string {
	var out []string
	for _, f := range append(append([]string(nil), h.ep.KnownHostsFiles...), h.ep.GlobalKnownHostsFiles...) {
		if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
			out = append(out, f)
		}
	}
	return out
}

func (h *hostKeyChecker) load() (ssh.HostKeyCallback, error) {
	files := h.existingFiles()
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	return cb, nil
}

// algorithms returns the host key algorithms to negotiate, in preference
// order: those of keys already known for this host first (so that a host
// known by its ed25519 key is not asked for its ECDSA key and then reported
// as changed), then the others, ed25519 before ECDSA before RSA as in
// OpenSSH. Certificate algorithms are offered (first) only when a
// known_hosts file has a @cert-authority line; otherwise a host with a
// certificate would be asked for it and could not be verified.
func (h *hostKeyChecker) algorithms(cb ssh.HostKeyCallback) []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	supported := ssh.SupportedAlgorithms().HostKeys
	if hasCertAuthority(h.existingFiles()) {
		for _, a := range supported {
			if strings.Contains(a, "-cert-") {
				add(a)
			}
		}
	}
	// Probe with a throwaway key: the KeyError lists the known keys.
	if pub, _, err := ed25519.GenerateKey(nil); err == nil {
		if probe, err := ssh.NewPublicKey(pub); err == nil {
			var ke *knownhosts.KeyError
			if errors.As(cb(h.ep.knownHostsAddr(), probeAddr, probe), &ke) {
				for _, k := range ke.Want {
					switch t := k.Key.Type(); t {
					case ssh.KeyAlgoRSA:
						add(ssh.KeyAlgoRSASHA512)
						add(ssh.KeyAlgoRSASHA256)
					default:
						add(t)
					}
				}
			}
		}
	}
	for _, a := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384,
		ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256} {
		add(a)
	}
	for _, a := range supported {
		if !strings.Contains(a, "-cert-") {
			add(a)
		}
	}
	// Keep only what this x/crypto can verify.
	ok := map[string]bool{}
	for _, a := range supported {
		ok[a] = true
	}
	final := out[:0]
	for _, a := range out {
		if ok[a] {
			final = append(final, a)
		}
	}
	return final
}

func hasCertAuthority(files []string) bool {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "@cert-authority") {
				return true
			}
		}
	}
	return false
}

var probeAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}

// callback returns the HostKeyCallback for the handshake.
func (h *hostKeyChecker) callback(cb ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		return h.check(cb, hostname, remote, key)
	}
}

func (h *hostKeyChecker) check(cb ssh.HostKeyCallback, hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := cb(hostname, remote, key)
	if err == nil {
		return nil
	}
	var re0 *knownhosts.RevokedError
	if cert, ok := key.(*ssh.Certificate); ok && !errors.As(err, &re0) {
		// No CA covers the certificate (or it is invalid): as ssh, check
		// the plain key inside it instead.
		return h.check(cb, hostname, remote, cert.Key)
	}
	name := knownhosts.Normalize(hostname)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return &RevokedHostKeyError{Host: name, File: re.Revoked.Filename, Line: re.Revoked.Line, Fingerprint: ssh.FingerprintSHA256(key)}
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return h.changed(name, key, ke.Want)
	case errors.As(err, &ke):
		if h.ep.StrictHostKeyChecking == strictAcceptNew {
			return h.acceptNew(hostname, remote, key)
		}
		return h.unknown(name, key)
	}
	return fmt.Errorf("checking host key of %s: %w", name, err)
}

func (h *hostKeyChecker) unknown(name string, key ssh.PublicKey) error {
	e := &UnknownHostError{
		Host:        name,
		Fingerprint: ssh.FingerprintSHA256(key),
		KeyLine:     knownhosts.Line([]string{name}, key),
	}
	if len(h.ep.KnownHostsFiles) > 0 {
		e.File = h.ep.KnownHostsFiles[0]
	}
	return e
}

func (h *hostKeyChecker) changed(name string, key ssh.PublicKey, want []knownhosts.KnownKey) error {
	k := want[0]
	for _, w := range want {
		if w.Key.Type() == key.Type() {
			k = w
			break
		}
	}
	return &ChangedHostKeyError{
		Host:             name,
		File:             k.Filename,
		Line:             k.Line,
		Fingerprint:      ssh.FingerprintSHA256(key),
		KnownFingerprint: ssh.FingerprintSHA256(k.Key),
	}
}

// acceptNew records key for an unknown host into the first user
// known_hosts file and accepts it. It re-reads the files under a lock first,
// so that parallel dials to one host record it once, and a key recorded
// meanwhile by someone else is still verified.
func (h *hostKeyChecker) acceptNew(hostname string, remote net.Addr, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	cb, err := h.load()
	if err != nil {
		return err
	}
	name := knownhosts.Normalize(hostname)
	err = cb(hostname, remote, key)
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return h.changed(name, key, ke.Want)
	case !errors.As(err, &ke):
		return h.check(cb, hostname, remote, key)
	}
	if len(h.ep.KnownHostsFiles) == 0 {
		return nil // UserKnownHostsFile none: accept without recording, as ssh does
	}
	file := h.ep.KnownHostsFiles[0]
	recorded := name
	if h.ep.HashKnownHosts {
		recorded = knownhosts.HashHostname(name)
	}
	line := knownhosts.Line([]string{recorded}, key) + "\n"
	if err := appendLine(file, line); err != nil {
		return fmt.Errorf("accept-new: recording host key of %s: %w", name, err)
	}
	return nil
}

func appendLine(file, line string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// Do not glue the new line onto an unterminated last line.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if r, err := os.Open(file); err == nil {
			if _, err := r.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
				line = "\n" + line
			}
			r.Close()
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
