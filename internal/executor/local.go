package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/shell"
	"github.com/fleet-deploy/fleet/runtime"
)

// isLocal reports whether h is deployed without SSH: it allows local
// deployment (allow_local, colmena's allowLocalDeployment) and is this
// machine, by host name or a local target address.
func isLocal(h *runtime.Host) bool {
	if !h.AllowLocal {
		return false
	}
	switch h.TargetHost {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	name, err := os.Hostname()
	return err == nil && (name == h.Name || name == h.TargetHost)
}

// localHost is this machine, for a local deployment. Commands run here
// as fleet's own user (privileged ones through `sudo -n`), without SSH
// and without a shell: argv is executed as is. There is no connection to
// lose, so Fresh is Run and Redial does nothing.
type localHost struct {
	name string // the host's name, for errors
	user string // root when fleet runs as root, whatever its target_user
}

func newLocalHost(name string) *localHost {
	l := &localHost{name: name, user: "root"}
	if uid := os.Geteuid(); uid != 0 {
		l.user = strconv.Itoa(uid)
		if u, err := user.Current(); err == nil {
			l.user = u.Username
		}
	}
	return l
}

func (l *localHost) User() string { return l.user }

// Run runs cmd here. Like remote.Conn.Run, a non-zero exit is a
// *remote.ExitError with the end of stderr.
func (l *localHost) Run(ctx context.Context, cmd remote.Cmd) error {
	argv := cmd.Argv
	if len(argv) == 0 {
		return shell.ErrEmpty
	}
	if cmd.Sudo {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin = cmd.Stdin
	c.Stdout = cmd.Stdout
	var errb bytes.Buffer
	c.Stderr = &errb
	if cmd.Stderr != nil {
		c.Stderr = io.MultiWriter(&errb, cmd.Stderr)
	}
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		b := errb.Bytes()
		if len(b) > 64<<10 {
			b = b[len(b)-64<<10:]
		}
		command, _ := shell.Join(argv...) // it ran, so argv holds no NUL
		return &remote.ExitError{Host: l.name, Command: command, Code: ee.ExitCode(), Stderr: string(b)}
	}
	return err
}

func (l *localHost) Fresh(ctx context.Context, cmd remote.Cmd) error { return l.Run(ctx, cmd) }

func (l *localHost) Redial() {}

func (l *localHost) Close() error { return nil }
