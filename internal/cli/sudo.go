package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

var askSudoFlag = &cli.BoolFlag{Name: "ask-sudo-password", Usage: "ask once for the target users' sudo password (on the terminal, or one line of stdin) and type it to sudo when it prompts; it never appears in argv or logs"}

// sudoPassword reads the password --ask-sudo-password asks for: from the
// terminal without echo, or else the first line of stdin (for CI).
func sudoPassword(c *cli.Context) (remote.Secret, error) {
	if !c.Bool("ask-sudo-password") {
		return nil, nil
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		defer tty.Close()
		fmt.Fprint(tty, "sudo password for the target hosts: ")
		pw, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err == nil {
			return remote.Secret(pw), nil
		}
	}
	line, err := bufio.NewReader(stdin(c)).ReadString('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("--ask-sudo-password: reading stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, &runtime.UsageError{Msg: "--ask-sudo-password: no terminal to ask on and no password on stdin"}
	}
	return remote.Secret(line), nil
}

func stdin(c *cli.Context) io.Reader {
	if c.App.Reader != nil {
		return c.App.Reader
	}
	return os.Stdin
}
