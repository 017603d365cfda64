package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/remote"
)

// TestSudoPassword: the lab's ops user needs a password for sudo. Without
// one, `sudo -n` fails with a SudoError; with Options.SudoPassword fleet
// answers sudo's prompt: commands run as root, their stdin arrives byte
// for byte, a wrong password is refused clearly, and the password shows
// up in no error, no command line and no process listing on the host.
func TestSudoPassword(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}, NoNixDaemon: true})
	h := l.Host("a")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dialAs := func(t *testing.T, user string, password []byte) *remote.Conn {
		t.Helper()
		ep, err := remote.Resolve(remote.Options{ConfigFiles: []string{l.SSHConfig}, SudoPassword: password}, remote.Target{Host: "a", User: user})
		if err != nil {
			t.Fatal(err)
		}
		c, err := remote.Dial(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	run := func(c *remote.Conn, stdin []byte, argv ...string) (string, string, error) {
		var out, errb bytes.Buffer
		cmd := remote.Cmd{Argv: argv, Sudo: true, Stdout: &out, Stderr: &errb}
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		err := c.Run(ctx, cmd)
		return out.String(), errb.String(), err
	}
	// noPassword fails the test if the password is in s.
	noPassword := func(t *testing.T, what, s string) {
		t.Helper()
		if strings.Contains(s, lab.OpsPassword) {
			t.Errorf("the password is in %s:\n%s", what, s)
		}
	}

	t.Run("sudo -n fails", func(t *testing.T) {
		c := dialAs(t, lab.OpsUser, nil)
		if out, err := c.Output(ctx, "id", "-un"); err != nil || out == nil || strings.TrimSpace(string(out)) != lab.OpsUser {
			t.Fatalf("login as ops: %q %v", out, err)
		}
		_, _, err := run(c, nil, "id", "-u")
		var se *remote.SudoError
		if !errors.Is(err, remote.ErrSudoPassword) || !errors.As(err, &se) || se.Rejected || se.Exit.Command != "sudo -n -- id -u" {
			t.Fatalf("err = %v, want a SudoError for `sudo -n`", err)
		}
		if !strings.Contains(err.Error(), "sudo on a needs a password") {
			t.Errorf("message: %v", err)
		}
	})

	t.Run("with the password", func(t *testing.T) {
		c := dialAs(t, lab.OpsUser, []byte(lab.OpsPassword))
		out, stderr, err := run(c, nil, "id", "-u")
		if err != nil || out != "0\n" || stderr != "" {
			t.Fatalf("sudo id -u: out %q, stderr %q, err %v", out, stderr, err)
		}
		// The command's own stderr arrives; sudo's prompt does not.
		_, stderr, err = run(c, nil, "sh", "-c", "echo to-stderr >&2")
		if err != nil || stderr != "to-stderr\n" {
			t.Errorf("stderr %q, err %v", stderr, err)
		}
		// Exit codes and stderr tails as without sudo.
		_, _, err = run(c, nil, "sh", "-c", "echo oops >&2; exit 3")
		var xe *remote.ExitError
		if !errors.As(err, &xe) || xe.Code != 3 || xe.Stderr != "oops\n" || xe.Command != "sudo -S -- sh -c 'echo oops >&2; exit 3'" {
			t.Errorf("exit 3: %#v", err)
		}

		// 2 MB through sudo cat, byte for byte.
		data := make([]byte, 2<<20)
		rand.Read(data)
		start := time.Now()
		out, _, err = run(c, data, "cat")
		if err != nil || out != string(data) {
			t.Fatalf("2 MB round trip through sudo cat: %d bytes back, equal %v, err %v", len(out), out == string(data), err)
		}
		t.Logf("2 MB through sudo cat in %v", time.Since(start).Round(time.Millisecond))
		// Empty stdin is empty, not the password.
		if out, _, err = run(c, []byte{}, "wc", "-c"); err != nil || strings.TrimSpace(out) != "0" {
			t.Errorf("empty stdin: %q %v", out, err)
		}
		if out, _, err = run(c, nil, "cat"); err != nil || out != "" {
			t.Errorf("nil stdin: %q %v", out, err)
		}

		// Several at once, each its own sudo and prompt.
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := fmt.Sprintf("line %d\n", i)
				if out, _, err := run(c, []byte(want), "sh", "-c", "cat; id -u"); err != nil || out != want+"0\n" {
					t.Errorf("parallel %d: %q %v", i, out, err)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("wrong password", func(t *testing.T) {
		wrong := "not-" + lab.OpsPassword
		c := dialAs(t, lab.OpsUser, []byte(wrong))
		var errb bytes.Buffer
		data := []byte("stdin that must not be taken for a password\n")
		err := c.Run(ctx, remote.Cmd{Argv: []string{"touch", "/root/ran"}, Sudo: true, Stdin: bytes.NewReader(data), Stderr: &errb})
		var se *remote.SudoError
		if !errors.Is(err, remote.ErrSudoPasswordRejected) || !errors.As(err, &se) || !se.Rejected {
			t.Fatalf("err = %v, want a rejected-password SudoError", err)
		}
		if !strings.Contains(err.Error(), "sudo on a rejected the password for ops") {
			t.Errorf("message: %v", err)
		}
		for what, s := range map[string]string{"the error": err.Error(), "Command": se.Exit.Command, "Stderr": se.Exit.Stderr, "stderr": errb.String(), "%#v": fmt.Sprintf("%#v", se.Exit)} {
			if strings.Contains(s, wrong) {
				t.Errorf("the password is in %s: %s", what, s)
			}
		}
		if exec(t, h, "test -e /root/ran && echo ran || echo no") != "no" {
			t.Error("the command ran")
		}
		t.Logf("%v", err)
	})

	t.Run("not in ps", func(t *testing.T) {
		c := dialAs(t, lab.OpsUser, []byte(lab.OpsPassword))
		done := make(chan error, 1)
		// ps shows every process of the machine: find ours by a marker no
		// other process has.
		marker := fmt.Sprintf("fleet-sudo-ps-%d", time.Now().UnixNano())
		go func() {
			_, _, err := run(c, nil, "sh", "-c", "sleep 2 # "+marker)
			done <- err
		}()
		var ps string
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := h.Exec(ctx, "ps -ef")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "sleep 2 # "+marker) {
				ps = out
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the command never showed in ps:\n%s", out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		sawSudo := false
		for _, line := range strings.Split(ps, "\n") {
			sawSudo = sawSudo || strings.Contains(line, "sudo -S") && strings.Contains(line, marker)
		}
		if !sawSudo {
			t.Errorf("ps does not show sudo -S running our command:\n%s", ps)
		}
		noPassword(t, "ps -ef", ps)
		// Nor in the host's environment files or logs.
		// (The pattern "passwor[d]" does not match grep's own command line.)
		pw := lab.OpsPassword
		pattern := regexp.QuoteMeta(pw[:len(pw)-1]) + "[" + pw[len(pw)-1:] + "]"
		if out, err := h.Exec(ctx, "grep -rsl -e "+shellQuote(pattern)+" /proc/[0-9]*/environ /proc/[0-9]*/cmdline /var/log /tmp /home/ops || true"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("password found on the host: %q %v", out, err)
		}
		if log, err := os.ReadFile(h.Root + "/sshd.log"); err == nil {
			noPassword(t, "sshd.log", string(log))
		}
	})

	t.Run("no prompt, no password", func(t *testing.T) {
		// nixos's sudo needs no password: it never prompts, and the
		// password must not end up in the command's stdin.
		c := dialAs(t, lab.NixosUser, []byte(lab.OpsPassword))
		out, _, err := run(c, []byte("only this\n"), "sh", "-c", "cat; id -u")
		if err != nil || out != "only this\n0\n" {
			t.Errorf("nixos: %q %v", out, err)
		}
		if out, _, err = run(c, nil, "cat"); err != nil || out != "" {
			t.Errorf("nixos, no stdin: %q %v", out, err)
		}
		// root needs no sudo at all.
		c = dialAs(t, lab.RootUser, []byte(lab.OpsPassword))
		if out, _, err = run(c, []byte("x"), "cat"); err != nil || out != "x" {
			t.Errorf("root: %q %v", out, err)
		}
	})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
