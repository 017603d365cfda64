package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSudo is a sudo for the test server: `-n` wants a password; `-S -p
// PROMPT --` prompts on stderr and reads the password from stdin, up to 3
// times, as sudo does; the password is "secret". With NOPASSWD set in its
// environment file it runs the command without asking.
const fakeSudo = `#!/bin/sh
if [ "$1" != -S ]; then echo 'sudo: a password is required' >&2; exit 1; fi
prompt=$3; shift 4
if [ ! -e "$(dirname "$0")/NOPASSWD" ]; then
	tries=0
	while :; do
		printf '%s' "$prompt" >&2
		IFS= read -r pw || { echo >&2; echo 'sudo: no password was provided' >&2; exit 1; }
		[ "$pw" = secret ] && break
		echo 'Sorry, try again.' >&2
		tries=$((tries+1))
		if [ $tries -ge 3 ]; then echo 'sudo: 3 incorrect password attempts' >&2; exit 1; fi
	done
fi
exec "$@"
`

func TestSudoWithPassword(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(fakeSudo), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(s *testServer) { s.path = bin })
	e := f.endpoint()
	e.User = "deploy"
	e.SudoPassword = Secret("secret")
	c := dial(t, e)
	ctx := context.Background()
	run := func(stdin string, argv ...string) (string, string, error) {
		var out, errb bytes.Buffer
		cmd := Cmd{Argv: argv, Sudo: true, Stdout: &out, Stderr: &errb}
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		err := c.Run(ctx, cmd)
		return out.String(), errb.String(), err
	}

	out, stderr, err := run("in\nput", "sh", "-c", "cat; echo err >&2")
	if err != nil || out != "in\nput" || stderr != "err\n" {
		t.Fatalf("out %q, stderr %q, err %v", out, stderr, err)
	}
	if out, _, err := run("", "cat"); err != nil || out != "" {
		t.Errorf("no stdin: %q %v", out, err)
	}

	// Without a prompt (NOPASSWD) the password is never written.
	os.WriteFile(filepath.Join(bin, "NOPASSWD"), nil, 0o644)
	if out, _, err := run("only this", "cat"); err != nil || out != "only this" {
		t.Errorf("NOPASSWD: %q %v", out, err)
	}
	os.Remove(filepath.Join(bin, "NOPASSWD"))

	// A wrong password: one answer, then EOF at the second prompt.
	e.SudoPassword = Secret("wrong-pw")
	c = dial(t, e)
	_, stderr, err = run("not a password\n", "touch", filepath.Join(bin, "ran"))
	var se *SudoError
	if !errors.Is(err, ErrSudoPasswordRejected) || errors.Is(err, ErrSudoPassword) || !errors.As(err, &se) || !se.Rejected {
		t.Fatalf("err = %v, want a rejected SudoError", err)
	}
	if !strings.Contains(err.Error(), "sudo on testhost rejected the password for deploy") || se.Exit.Command != "sudo -S -- touch "+filepath.Join(bin, "ran") {
		t.Errorf("error %q, command %q", err, se.Exit.Command)
	}
	if _, err := os.Stat(filepath.Join(bin, "ran")); err == nil {
		t.Error("the command ran")
	}
	if strings.Contains(stderr, "fleet-remote-sudo") || !strings.Contains(stderr, "Sorry, try again.") {
		t.Errorf("stderr %q", stderr)
	}
	cmds, _ := f.srv.recorded()
	for _, s := range append(cmds, err.Error(), stderr, fmt.Sprintf("%+v %#v", e, e), se.Exit.Stderr) {
		if strings.Contains(s, "secret") || strings.Contains(s, "wrong-pw") {
			t.Errorf("a password shows in %q", s)
		}
	}
}

func TestSecret(t *testing.T) {
	o := Options{SudoPassword: []byte("hunter2")}
	var nilSecret Secret
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s %q %x", o, o, o, o.SudoPassword, o.SudoPassword, o.SudoPassword),
		fmt.Sprint(o.SudoPassword), nilSecret.String(),
	} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, fmt.Sprintf("%x", "hunter2")) {
			t.Errorf("printed: %s", s)
		}
	}
	j, _ := json.Marshal(o)
	if strings.Contains(string(j), "hunter2") || !strings.Contains(string(j), "redacted") {
		t.Errorf("json: %s", j)
	}
	if j, _ := json.Marshal(Options{}); !strings.Contains(string(j), `"SudoPassword":null`) {
		t.Errorf("json: %s", j)
	}
}

func TestSudoFilter(t *testing.T) {
	var out bytes.Buffer
	sf := newSudoFilter(&out)
	for _, chunk := range []string{"lecture\nfleet-remote-sud", "o-prompt\nSorry, try again.\nfleet-remote-sudo-prompt\n", "\nfleet-remote-sudo-started\nfrom the command\n", "fleet-remote-sudo-prompt\n"} {
		sf.Write([]byte(chunk))
	}
	sf.flush()
	if want := "lecture\nSorry, try again.\nfrom the command\nfleet-remote-sudo-prompt\n"; out.String() != want {
		t.Errorf("passed on %q, want %q", out.String(), want)
	}
	var evs []sudoEvent
	for len(sf.events) > 0 {
		evs = append(evs, <-sf.events)
	}
	if fmt.Sprint(evs) != fmt.Sprint([]sudoEvent{sudoPrompted, sudoPrompted, sudoStarted}) {
		t.Errorf("events %v", evs)
	}
}
