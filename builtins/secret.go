package builtins

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const secretDoc = `secret(dest, text=None, file=None, command=None, owner="root", group="root", mode="0600", upload="pre-activation")

A key file for host(keys = [...]), like colmena's deployment.keys. Give
exactly one source: text (inline), file (a local file, relative to this
file, read at deploy time) or command (a list of words run on this
machine at deploy time, e.g. ["pass", "show", "wifi"]). fleet uploads it
over the host's SSH connection through stdin into a temporary file next
to dest, sets owner, group and mode, then renames it onto dest (never
through a symlink there). Missing parent directories are created mode
0755, owned by root; a dest that is a directory is refused. upload is
"pre-activation" (before activate) or "post-activation".

The content never appears in argv, logs, events, plans or errors.
Plans and events show dest, owner, mode and a tag of the content: a
keyed hash (HMAC-SHA256) under a random key of the state directory
(secret-tag.key in --state-dir), so a changed secret shows a changed
tag, and the tag reveals nothing to whoever lacks that key.

Keep secrets out of the flake. Building a host copies its flake's
source into the local Nix store, which every user of the machine can
read: for a flake in a git work tree the files git tracks (fleet names
it git+file:, as nix build does), elsewhere the whole directory. A
text = literal in a .star file Nix copies, or a file = inside what it
copies, is therefore a warning at load (with the secret's position).
The safe ways: file = a path outside the flake (or one git ignores and
never tracks), or command = a tool that decrypts at deploy time, e.g.
["sops", "-d", "secrets/wifi.yaml"] or ["pass", "show", "wifi"].`

const uploadKeysDoc = `upload_keys(host, upload="pre-activation")

Uploads the host's keys of that kind ("pre-activation",
"post-activation", or "all"), one step each. The default strategy calls
it before and after activation; fleet upload-keys does only this. A key
whose command fails stops that host before activation. Only inside
deploy(ctx).`

var (
	modeRE = regexp.MustCompile(`^0?[0-7]{3}$`)
)

func secretFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		dest                      string
		textV, fileV, commandV    starlark.Value = starlark.None, starlark.None, starlark.None
		owner, group, mode, phase                = "root", "root", "0600", "pre-activation"
	)
	if err := starlark.UnpackArgs("secret", args, kwargs, "dest", &dest, "text?", &textV, "file?", &fileV,
		"command?", &commandV, "owner?", &owner, "group?", &group, "mode?", &mode, "upload?", &phase); err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("secret(%q): %s", dest, fmt.Sprintf(format, a...))
	}
	if !path.IsAbs(dest) || path.Clean(dest) != dest || dest == "/" || strings.ContainsAny(dest, "\x00\n") {
		return nil, fail("dest must be a clean absolute path such as \"/run/keys/wifi\"")
	}
	if !userRE.MatchString(owner) || !userRE.MatchString(group) {
		return nil, fail("owner and group must be user and group names")
	}
	if !modeRE.MatchString(mode) {
		return nil, fail("mode %q is not an octal mode such as \"0600\"", mode)
	}
	if phase != "pre-activation" && phase != "post-activation" {
		return nil, fail("upload must be \"pre-activation\" or \"post-activation\", got %q", phase)
	}
	var (
		text    []byte
		file    string
		command []string
		n       int
	)
	if textV != starlark.None {
		n++
		t, ok := starlark.AsString(textV)
		if !ok {
			return nil, fail("text must be a string")
		}
		text = []byte(t)
	}
	if fileV != starlark.None {
		n++
		f, ok := starlark.AsString(fileV)
		if !ok || f == "" {
			return nil, fail("file must be a path")
		}
		r, err := runOf(th, "secret")
		if err != nil {
			return nil, err
		}
		file = r.Resolve(th, f)
	}
	if commandV != starlark.None {
		n++
		var err error
		if _, isStr := commandV.(starlark.String); isStr {
			return nil, fail("command must be a list of words, not a string")
		}
		if command, err = stringList("secret", "command", commandV); err != nil || len(command) == 0 {
			return nil, fail("command must be a non-empty list of words")
		}
	}
	if n != 1 {
		return nil, fail("give exactly one of text=, file= or command=")
	}
	s := runtime.NewSecret(dest, owner, group, mode, phase, text, file, command)
	s.DeclaredAt(th)
	return s, nil
}

func uploadKeysFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hostV starlark.Value
	phase := "pre-activation"
	if err := starlark.UnpackArgs("upload_keys", args, kwargs, "host", &hostV, "upload?", &phase); err != nil {
		return nil, err
	}
	if phase != "pre-activation" && phase != "post-activation" && phase != "all" {
		return nil, fmt.Errorf("upload_keys(): upload must be \"pre-activation\", \"post-activation\" or \"all\", got %q", phase)
	}
	h, err := deployableArg("upload_keys", hostV)
	if err != nil {
		return nil, err
	}
	r, err := deployRun(th, "upload_keys")
	if err != nil {
		return nil, err
	}
	n := 0
	for _, k := range h.Keys {
		if phase != "all" && k.Upload != phase {
			continue
		}
		info := &runtime.KeyInfo{Dest: k.Dest, Owner: k.Owner, Group: k.Group, Mode: k.Mode, Source: k.Source()}
		if t, ok := k.Text(); ok {
			info.Hash = r.SecretTag(runtime.Hash(t))
		}
		err := r.Step(th, &runtime.Step{Host: h.Name, Action: runtime.ActionUploadKey, Target: h.Target(), Key: info, Sudo: h.Sudo()},
			func(ctx context.Context, ex runtime.Executor) (*runtime.StepResult, error) {
				hash, err := ex.UploadKey(ctx, h, k)
				if tag := r.SecretTag(hash); tag != "" {
					info.Hash = tag
				}
				return nil, err
			})
		if err != nil {
			return nil, err
		}
		n++
	}
	return starlark.MakeInt(n), nil
}
