package remote

import (
	"os"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

// Every test that opens a socket does so only on 127.0.0.0/8 and only inside
// a private network namespace: TestMain runs the tests in one, as the lab's
// tests do (as root; as anyone else in a user namespace of their own, where
// the kernel allows it).
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// mustLookPath is the path of a program labtest.Require checked for.
func mustLookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := lab.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
