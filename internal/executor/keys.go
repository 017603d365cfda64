package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/fleet-deploy/fleet/runtime"
)

// keyScript installs a key from stdin exactly at dest: a private
// temporary file next to dest, owner, group and mode set, then renamed
// onto dest itself (mv -T: a symlink at dest is replaced, never
// followed), so dest never holds half a key or a key others may read. A
// dest that is a directory is refused before anything changes (mv would
// put the key inside it). Missing parent directories are made 0755,
// owned by the user the script runs as (root): searchable, so that an
// owner other than root can reach its key. Arguments: dest, owner,
// group, mode.
const keyScript = `dest=$1 owner=$2 group=$3 mode=$4
if [ -d "$dest" ] && [ ! -L "$dest" ]; then
	printf '%s is a directory: a key is put at dest itself, so dest must name the key file (e.g. %s/NAME)\n' "$dest" "$dest" >&2
	cat >/dev/null
	exit 1
fi
dir=$(dirname -- "$dest")
(umask 022 && mkdir -p -- "$dir") || exit 1
umask 077
tmp=$(mktemp -- "$dir/.fleet-key.XXXXXXXX") || exit 1
trap 'rm -f -- "$tmp"' EXIT
cat >"$tmp" || exit 1
chown -- "$owner:$group" "$tmp" || exit 1
chmod -- "$mode" "$tmp" || exit 1
mv -f -T -- "$tmp" "$dest" || exit 1
trap - EXIT
`

// UploadKey gets a key's content here and installs it on h through
// stdin. Errors say which key and why, never what it holds.
func (e *Executor) UploadKey(ctx context.Context, h *runtime.Host, key *runtime.Secret) (string, error) {
	content, err := keyContent(ctx, key)
	if err != nil {
		return "", &runtime.HostError{Host: h.Name, Step: "upload-key", Err: fmt.Errorf("key %s: %w", key.Dest, err)}
	}
	m, err := e.machine(h)
	if err == nil {
		_, err = m.run(ctx, asRoot, bytes.NewReader(content), "sh", "-c", keyScript, "fleet-key", key.Dest, key.Owner, key.Group, key.Mode)
	}
	if err != nil {
		return "", hostErr(h, "upload-key", fmt.Errorf("key %s: %w", key.Dest, err))
	}
	return runtime.Hash(content), nil
}

func keyContent(ctx context.Context, key *runtime.Secret) ([]byte, error) {
	if t, ok := key.Text(); ok {
		return t, nil
	}
	if key.File != "" {
		b, err := os.ReadFile(key.File)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("reading %s: %v", key.File, pe.Err)
			}
			return nil, err
		}
		return b, nil
	}
	cmd := exec.CommandContext(ctx, key.Command[0], key.Command[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		// Not its output: it may hold the secret.
		return nil, fmt.Errorf("command %s failed: %v", key.Command[0], err)
	}
	return out.Bytes(), nil
}
