package remote

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Every test that opens a socket does so only on 127.0.0.0/8 and only inside
// a private network namespace: TestMain re-executes the test binary under
// `unshare --net` (as root) or `unshare --user --map-root-user --net` (as
// anyone else, where the kernel allows it), marked by netnsEnv.
const netnsEnv = "FLEET_REMOTE_TEST_NETNS"

func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		if code, ok := reexecInNetns(); ok {
			os.Exit(code)
		}
	} else if err := exec.Command(findBin("ip"), "link", "set", "lo", "up").Run(); err != nil {
		loud(fmt.Sprintf("cannot bring up lo in the private network namespace: %v", err))
	}
	os.Exit(m.Run())
}

func reexecInNetns() (int, bool) {
	exe, err := os.Executable()
	if err != nil {
		loud("cannot re-execute the test binary: " + err.Error())
		return 0, false
	}
	unshare := findBin("unshare")
	args, marker := []string{"--net"}, "root"
	if os.Geteuid() != 0 {
		args, marker = []string{"--user", "--map-root-user", "--net"}, "user"
	}
	if out, err := exec.Command(unshare, append(args, "--", findBin("true"))...).CombinedOutput(); err != nil {
		loud(fmt.Sprintf("cannot enter a private network namespace (%s %s): %v %s", unshare, strings.Join(args, " "), err, out))
		return 0, false
	}
	cmd := exec.Command(unshare, append(append(args, "--", exe), os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+marker)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	if err == nil {
		return 0, true
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
		return ee.ExitCode(), true
	}
	fmt.Fprintf(os.Stderr, "test binary in private network namespace: %v\n", err)
	return 1, true
}

// inPrivateNetns reports whether every network interface is a loopback one.
func inPrivateNetns() bool {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		return false
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// requireNetns skips, loudly, a test that needs sockets when the binary
// does not run in a private network namespace.
func requireNetns(t testing.TB) {
	t.Helper()
	if os.Getenv(netnsEnv) == "" || !inPrivateNetns() {
		msg := "SKIPPING: this test opens sockets and runs only inside a private network namespace (needs root, or unprivileged user namespaces)"
		loud(msg)
		t.Skip(msg)
	}
}

// requireRootNetns is requireNetns plus real root (to run sshd).
func requireRootNetns(t testing.TB) {
	t.Helper()
	requireNetns(t)
	if os.Getenv(netnsEnv) != "root" || os.Geteuid() != 0 {
		msg := "SKIPPING end-to-end OpenSSH test: needs root (it starts a real sshd on 127.0.0.1:2222 in a private network namespace)"
		loud(msg)
		t.Skip(msg)
	}
}

func loud(msg string) {
	bar := strings.Repeat("*", 78)
	fmt.Fprintf(os.Stderr, "%s\n*** %s\n%s\n", bar, msg, bar)
}

func findBin(name string) string {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}
