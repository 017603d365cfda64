package runtime

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Secret is a key file fleet uploads to a host (colmena's
// deployment.keys). Its content never appears in argv, logs, events,
// plans or errors, and neither does anything computed from it alone:
// only its destination, owner, mode and, where the run has a key, a
// keyed tag (Run.SecretTag).
type Secret struct {
	Dest   string
	Owner  string
	Group  string
	Mode   string // octal, e.g. "0600"
	Upload string // "pre-activation" or "post-activation"

	// Exactly one source.
	text    []byte
	File    string   // absolute path on this machine
	Command []string // run on this machine at deploy time

	// Pos is where secret() was called; callers are the files of the
	// call stack then (as messages name them), one of which holds the
	// text of an inline secret.
	Pos     syntax.Position
	callers []string
}

// NewSecret makes a secret; text is nil unless the content is inline.
func NewSecret(dest, owner, group, mode, upload string, text []byte, file string, command []string) *Secret {
	return &Secret{Dest: dest, Owner: owner, Group: group, Mode: mode, Upload: upload, text: text, File: file, Command: command}
}

// DeclaredAt records that the builtin running on th declared s: the
// position of its call and the files of the call stack, for the load's
// warnings about secrets Nix would copy into the store.
func (s *Secret) DeclaredAt(th *starlark.Thread) {
	if th.CallStackDepth() > 1 {
		s.Pos = th.CallFrame(1).Pos
	}
	s.callers = nil
	for _, fr := range th.CallStack() {
		if f := fr.Pos.Filename(); f != "" && f != "<builtin>" {
			s.callers = append(s.callers, f)
		}
	}
}

// Text returns inline content, if the secret has some.
func (s *Secret) Text() ([]byte, bool) { return s.text, s.text != nil }

// Source says where the content comes from, without the content.
func (s *Secret) Source() string {
	switch {
	case s.text != nil:
		return "text"
	case s.File != "":
		return "file " + s.File
	default:
		return "command"
	}
}

// Hash is the SHA-256 of a key's content, as an Executor's UploadKey
// returns it to the step. It is never shown (anyone could test a guess
// against it): Run.SecretTag turns it into the tag outputs carry.
func Hash(content []byte) string {
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// SecretTag is what outputs show of a key's content (Hash): a 64-bit
// HMAC-SHA256 under the run's SecretKey, so that a changed secret shows
// a changed tag while the tag reveals nothing to whoever lacks the key
// (the state directory's, see RunOptions). Without a key, or without a
// hash, there is no tag.
func (r *Run) SecretTag(hash string) string {
	if len(r.secretKey) == 0 || hash == "" {
		return ""
	}
	m := hmac.New(sha256.New, r.secretKey)
	m.Write([]byte(hash))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:16]
}

func (s *Secret) String() string        { return fmt.Sprintf("secret(%q)", s.Dest) }
func (s *Secret) Type() string          { return "secret" }
func (s *Secret) Freeze()               {}
func (s *Secret) Truth() starlark.Bool  { return starlark.True }
func (s *Secret) Hash() (uint32, error) { return starlark.String(s.Dest).Hash() }

// Attr exposes everything but the content.
func (s *Secret) Attr(name string) (starlark.Value, error) {
	switch name {
	case "dest":
		return starlark.String(s.Dest), nil
	case "owner":
		return starlark.String(s.Owner), nil
	case "group":
		return starlark.String(s.Group), nil
	case "mode":
		return starlark.String(s.Mode), nil
	case "upload":
		return starlark.String(s.Upload), nil
	}
	return nil, nil
}

// AttrNames lists the readable fields.
func (s *Secret) AttrNames() []string { return []string{"dest", "group", "mode", "owner", "upload"} }
