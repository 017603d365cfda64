package remote

// This file gathers the keys offered to a host: the ssh-agent's, then
// the identity files' (with their certificates), never prompting for a
// passphrase; an AuthError says what was offered and what could not be.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// AuthError is returned by Dial when no key was accepted, or when there is
// no usable key at all (then before connecting).
type AuthError struct {
	Endpoint string // user@host:port
	// Tried lists the keys offered, agent keys first ("agent: SHA256:… comment",
	// "/home/me/.ssh/id_ed25519 (ssh-ed25519 SHA256:…)").
	Tried []string
	// Encrypted are passphrase-protected identity files that no ssh-agent
	// holds; fleet never prompts for a passphrase.
	Encrypted []string
	// Problems are identity files or an agent that could not be used, with why.
	Problems []string
	Err      error // the SSH library's error, if it got that far
}

func (e *AuthError) Error() string {
	var b strings.Builder
	if len(e.Tried) == 0 {
		fmt.Fprintf(&b, "ssh %s: no usable key to authenticate with", e.Endpoint)
		if e.Err != nil {
			fmt.Fprintf(&b, " (%v)", e.Err)
		}
	} else {
		fmt.Fprintf(&b, "ssh %s: authentication failed (offered: %s)", e.Endpoint, strings.Join(e.Tried, ", "))
	}
	for _, f := range e.Encrypted {
		fmt.Fprintf(&b, "; identity file %s is passphrase-protected and no ssh-agent holds it (fleet never prompts: run `ssh-add %s` with SSH_AUTH_SOCK set)", f, f)
	}
	if len(e.Problems) > 0 {
		fmt.Fprintf(&b, "; %s", strings.Join(e.Problems, "; "))
	}
	if e.Err != nil && len(e.Tried) > 0 {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *AuthError) Unwrap() error { return e.Err }

// keySet holds the keys to offer to one host.
type keySet struct {
	signers   []ssh.Signer
	tried     []string
	encrypted []string
	problems  []string
	agentConn net.Conn
}

func (k *keySet) close() {
	if k.agentConn != nil {
		k.agentConn.Close()
	}
}

type identity struct {
	path      string
	signers   []ssh.Signer  // certificate signer first, if any
	pub       ssh.PublicKey // known even for an encrypted key, if possible
	encrypted bool
	pubOnly   bool // the file is a public key: its private key must be in the agent
}

// loadKeys reads the agent's keys, then the identity files. Missing identity
// files are skipped silently (ssh's defaults often do not exist).
func loadKeys(e Endpoint) (*keySet, error) {
	ks := &keySet{}
	var ids []identity
	for _, p := range e.IdentityFiles {
		id, err := loadIdentity(p)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				ks.problems = append(ks.problems, err.Error())
			}
			continue
		}
		ids = append(ids, id)
	}

	seen := map[string]bool{}
	add := func(s ssh.Signer, desc string) {
		blob := string(s.PublicKey().Marshal())
		if seen[blob] {
			return
		}
		seen[blob] = true
		ks.signers = append(ks.signers, s)
		ks.tried = append(ks.tried, desc)
	}

	inAgent := map[string]bool{}
	var agentSigners []ssh.Signer
	if e.AgentSocket != "" {
		conn, err := net.DialTimeout("unix", e.AgentSocket, 5*time.Second)
		if err != nil {
			ks.problems = append(ks.problems, fmt.Sprintf("ssh-agent at %s unusable: %v", e.AgentSocket, err))
		} else {
			ks.agentConn = conn
			ac := agent.NewClient(conn)
			keys, err := ac.List()
			if err != nil {
				ks.problems = append(ks.problems, fmt.Sprintf("ssh-agent at %s: %v", e.AgentSocket, err))
			}
			signers, serr := ac.Signers()
			agentSigners = signers
			if err == nil && serr != nil {
				ks.problems = append(ks.problems, fmt.Sprintf("ssh-agent at %s: %v", e.AgentSocket, serr))
			}
			comments := map[string]string{}
			for _, k := range keys {
				comments[string(k.Marshal())] = k.Comment
			}
			allowed := map[string]bool{}
			for _, id := range ids {
				if id.pub != nil {
					allowed[string(id.pub.Marshal())] = true
				}
				for _, s := range id.signers {
					allowed[string(s.PublicKey().Marshal())] = true
				}
			}
			for _, s := range signers {
				blob := string(s.PublicKey().Marshal())
				inAgent[blob] = true
				if cert, ok := s.PublicKey().(*ssh.Certificate); ok {
					inAgent[string(cert.Key.Marshal())] = true
					if allowed[string(cert.Key.Marshal())] {
						allowed[blob] = true
					}
				}
				if e.IdentitiesOnly && !allowed[blob] {
					continue
				}
				desc := "agent: " + ssh.FingerprintSHA256(s.PublicKey())
				if c := comments[blob]; c != "" {
					desc += " " + c
				}
				add(s, desc)
			}
		}
	}

	for _, id := range ids {
		if id.pubOnly {
			if !inAgent[string(id.pub.Marshal())] {
				ks.problems = append(ks.problems, fmt.Sprintf("identity file %s is a public key, and no ssh-agent holds its private key", id.path))
			}
			continue
		}
		if id.encrypted {
			if id.pub == nil || !inAgent[string(id.pub.Marshal())] {
				ks.encrypted = append(ks.encrypted, id.path)
			}
			continue
		}
		for _, s := range id.signers {
			add(s, fmt.Sprintf("%s (%s %s)", id.path, s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey())))
		}
	}
	ks.addCertificates(e.CertificateFiles, agentSigners, ids)
	return ks, nil
}

// addCertificates puts the CertificateFiles first, each signed with the
// matching private key: an identity file's, else the agent's.
func (ks *keySet) addCertificates(files []string, agentSigners []ssh.Signer, ids []identity) {
	var signers []ssh.Signer
	var tried []string
	for _, f := range files {
		pk := readPublicKey(f)
		cert, ok := pk.(*ssh.Certificate)
		if !ok {
			if _, err := os.Stat(f); err == nil {
				ks.problems = append(ks.problems, fmt.Sprintf("certificate file %s: not an SSH certificate", f))
			}
			continue
		}
		key := string(cert.Key.Marshal())
		var signer ssh.Signer
		for _, id := range ids {
			for _, s := range id.signers {
				if string(s.PublicKey().Marshal()) == key {
					signer = s
				}
			}
		}
		for _, s := range agentSigners {
			if signer == nil && string(s.PublicKey().Marshal()) == key {
				signer = s
			}
		}
		if signer == nil {
			ks.problems = append(ks.problems, fmt.Sprintf("certificate file %s: no identity file or agent key has its private key", f))
			continue
		}
		cs, err := ssh.NewCertSigner(cert, signer)
		if err != nil {
			ks.problems = append(ks.problems, fmt.Sprintf("certificate file %s: %v", f, err))
			continue
		}
		signers = append(signers, cs)
		tried = append(tried, fmt.Sprintf("%s (%s %s)", f, cert.Type(), ssh.FingerprintSHA256(cert.Key)))
	}
	ks.signers = append(signers, ks.signers...)
	ks.tried = append(tried, ks.tried...)
}

func loadIdentity(path string) (identity, error) {
	id := identity{path: path}
	b, err := os.ReadFile(path)
	if err != nil {
		return id, fmt.Errorf("identity file %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var pme *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pme):
		id.encrypted = true
		id.pub = pme.PublicKey
		if id.pub == nil {
			id.pub = readPublicKey(path + ".pub")
		}
		return id, nil
	case err != nil:
		// A public key (the 1Password style: the private key lives in the
		// agent) selects that agent key.
		if pk, _, _, _, perr := ssh.ParseAuthorizedKey(b); perr == nil {
			id.pub, id.pubOnly = pk, true
			return id, nil
		}
		return id, fmt.Errorf("identity file %s: %v", path, err)
	}
	id.pub = signer.PublicKey()
	if cb, err := os.ReadFile(path + "-cert.pub"); err == nil {
		if pk, _, _, _, err := ssh.ParseAuthorizedKey(cb); err == nil {
			if cert, ok := pk.(*ssh.Certificate); ok && bytes.Equal(cert.Key.Marshal(), signer.PublicKey().Marshal()) {
				if cs, err := ssh.NewCertSigner(cert, signer); err == nil {
					id.signers = append(id.signers, cs)
				}
			}
		}
	}
	id.signers = append(id.signers, signer)
	return id, nil
}

func readPublicKey(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return pk
}
