package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"go.starlark.net/starlark"
)

// Secret is a key file fleet uploads to a host (colmena's
// deployment.keys). Its content never appears in argv, logs, events,
// plans or errors: only its destination, owner, mode and a hash do.
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
}

// NewSecret makes a secret; text is nil unless the content is inline.
func NewSecret(dest, owner, group, mode, upload string, text []byte, file string, command []string) *Secret {
	return &Secret{Dest: dest, Owner: owner, Group: group, Mode: mode, Upload: upload, text: text, File: file, Command: command}
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

// Hash is a short SHA-256 of content, safe to show.
func Hash(content []byte) string {
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])[:16]
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
