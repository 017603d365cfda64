package executor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// runner runs one command on a host: over SSH (*remote.Conn), or here
// for a local deployment.
type runner interface {
	Run(ctx context.Context, cmd remote.Cmd) error
}

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

// localRunner runs commands on this machine, as the target user would:
// privileged steps through `sudo -n` unless fleet already runs as root.
// No shell is involved: argv is executed as is.
type localRunner struct{ host string }

func (l localRunner) Run(ctx context.Context, cmd remote.Cmd) error {
	argv := cmd.Argv
	if cmd.Sudo && os.Geteuid() != 0 {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin = cmd.Stdin
	c.Stdout = cmd.Stdout
	var errb bytes.Buffer
	if cmd.Stderr != nil {
		c.Stderr = &teeWriter{&errb, cmd.Stderr}
	} else {
		c.Stderr = &errb
	}
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		b := errb.Bytes()
		if len(b) > 64<<10 {
			b = b[len(b)-64<<10:]
		}
		return &remote.ExitError{Host: l.host, Command: strings.Join(argv, " "), Code: ee.ExitCode(), Stderr: string(b)}
	}
	return err
}

type teeWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.a.Write(p)
	return t.b.Write(p)
}
