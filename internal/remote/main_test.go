package remote

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

// Every test that opens a socket does so only on 127.0.0.0/8 and only inside
// a private network namespace: TestMain runs the tests in one, as the lab's
// tests do (as root; as anyone else in a user namespace of their own, where
// the kernel allows it).
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// requireNetns skips (see labtest.Skip) a test that needs sockets when the
// binary does not run in a private network namespace.
func requireNetns(t testing.TB) {
	t.Helper()
	labtest.RequireNetns(t)
}

// requireRootNetns is requireNetns plus real root and OpenSSH (to run
// sshd): what the lab needs.
func requireRootNetns(t testing.TB) {
	t.Helper()
	labtest.Require(t)
}

func loud(msg string) {
	bar := strings.Repeat("*", 78)
	fmt.Fprintf(os.Stderr, "%s\n*** %s\n%s\n", bar, msg, bar)
}

// findBin returns the path of the program name, or name if it is not
// installed.
func findBin(name string) string {
	if p, err := lab.LookPath(name); err == nil {
		return p
	}
	return name
}
