package e2e

import (
	"bytes"
	"context"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/shell"
)

// hostile returns a random string built from the pieces shells love.
func hostile(rng *rand.Rand) string {
	pieces := []string{"'", `"`, "\\", "$(touch /tmp/pwned)", "`touch /tmp/pwned`", ";", "&&", "|", "\n", "\t", " ",
		"${HOME}", "$HOME", "*", "?", "[a]", "~", "#", "!", "-n", "--", "=", "%s", "é", "日本", "\x01", "\x7f", "\r", "''", "{a,b}", ">x", "<y"}
	var b strings.Builder
	for n := rng.Intn(6); n >= 0; n-- {
		b.WriteString(pieces[rng.Intn(len(pieces))])
		if rng.Intn(3) == 0 {
			b.WriteByte(byte('a' + rng.Intn(26)))
		}
	}
	return b.String()
}

// TestQuotingOnLabHost sends thousands of hostile arguments through the
// one quoting helper to a real sh on a lab host, as root and through
// sudo, and checks each arrives byte for byte and none is executed.
func TestQuotingOnLabHost(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewSource(1))
	for _, user := range []string{"root", "nixos"} {
		ep, err := remote.Resolve(remote.Options{ConfigFiles: []string{l.SSHConfig}}, remote.Target{Host: "a", User: user})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := remote.Dial(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for round := 0; round < 20; round++ {
			args := make([]string, 100)
			for i := range args {
				args[i] = hostile(rng)
			}
			var out bytes.Buffer
			err := conn.Run(ctx, remote.Cmd{Argv: append([]string{"printf", `%s\0`}, args...), Sudo: true, Stdout: &out})
			if err != nil {
				t.Fatalf("%s: %v", user, err)
			}
			got := strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00")
			if len(got) != len(args) {
				t.Fatalf("%s: %d arguments came back, sent %d", user, len(got), len(args))
			}
			for i := range args {
				if got[i] != args[i] {
					t.Fatalf("%s: argument %d: sent %q, got %q (quoted as %s)", user, i, args[i], got[i], shell.Quote(args[i]))
				}
			}
		}
		if err := conn.Run(ctx, remote.Cmd{Argv: []string{"echo", "a\x00b"}}); err == nil {
			t.Errorf("a NUL byte was accepted")
		}
	}
	if out := exec(t, l.Host("a"), "test -e /tmp/pwned && echo pwned || echo clean"); out != "clean" {
		t.Fatalf("a hostile argument was executed on the host")
	}
}
