package executor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/shell"
)

// TestLocalHost runs commands on this machine the way remote.Conn runs
// them on another: argv as is, a non-zero exit as a *remote.ExitError.
func TestLocalHost(t *testing.T) {
	l := newLocalHost("here")
	tests := []struct {
		name   string
		argv   []string
		stdout string
		stderr string
		code   int // -1: an error that is not an ExitError
	}{
		{name: "stdout", argv: []string{"echo", "a b", "it's"}, stdout: "a b it's\n"},
		{name: "exit status", argv: []string{"sh", "-c", "echo oops >&2; exit 3"}, stderr: "oops\n", code: 3},
		{name: "empty argv", argv: nil, code: -1},
		{name: "no such command", argv: []string{"/nonexistent/fleet-test"}, code: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb strings.Builder
			err := l.Run(context.Background(), remote.Cmd{Argv: tt.argv, Stdout: &out, Stderr: &errb})
			var ee *remote.ExitError
			switch {
			case tt.code == 0 && err != nil:
				t.Fatalf("error: %v", err)
			case tt.code > 0 && (!errors.As(err, &ee) || ee.Code != tt.code || ee.Stderr != tt.stderr || ee.Host != "here"):
				t.Fatalf("error %#v, want an ExitError of here with status %d and stderr %q", err, tt.code, tt.stderr)
			case tt.code < 0 && (err == nil || errors.As(err, &ee)):
				t.Fatalf("error %v, want one about running the command", err)
			}
			if ee != nil {
				if want, _ := shell.Join(tt.argv...); ee.Command != want {
					t.Errorf("Command %q, want %q", ee.Command, want)
				}
			}
			if out.String() != tt.stdout || errb.String() != tt.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", out.String(), errb.String(), tt.stdout, tt.stderr)
			}
		})
	}
}
