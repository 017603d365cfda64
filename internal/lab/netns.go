package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/fleet-deploy/fleet/internal/nixconf"
)

// envNetns marks a process that RunInPrivateNetns re-executed into a fresh
// network namespace. The re-executed child sees "1" and replaces it with the
// id of its namespace ("net:[4026532…]"), so that descendants running in the
// same namespace (fuzz workers, nested tools) do not re-execute again, while
// processes in any other namespace (e.g. `fleet-lab -- go test ./...`) get a
// fresh namespace of their own.
const envNetns = "FLEET_LAB_NETNS"

// EnvRequireLab is the environment variable that turns Require's skip into a
// failure. CI sets FLEET_REQUIRE_LAB=1.
const EnvRequireLab = "FLEET_REQUIRE_LAB"

// Main is what a TestMain of a package with end-to-end lab tests calls:
//
//	func TestMain(m *testing.M) { os.Exit(lab.Main(m)) }
//
// As root it re-executes the test binary in a new, private network namespace
// (only a loopback interface, brought up) and runs the tests there, returning
// their exit code. Not as root it prints a loud notice and runs the tests
// directly; those that need the lab skip via Require. Either way every Nix
// command the tests start reads the project's nix.conf (internal/nixconf),
// not the machine's.
func Main(m *testing.M) int {
	return nixconf.Isolated(func() int { return runMain(m) })
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		loud("SKIPPING end-to-end lab tests: need root (they start sshd in private network/mount namespaces)")
		return m.Run()
	}
	code, parent, err := runInPrivateNetns(m.Run)
	if err != nil {
		loud(fmt.Sprintf("SKIPPING end-to-end lab tests: cannot enter a private network namespace: %v", err))
		return m.Run()
	}
	if parent {
		// The tests ran in the child; this process has nothing left to do.
		// Exit right away: under -race, os.Exit would sleep a second first
		// (GORACE atexit_sleep_ms), once per process.
		syscall.Exit(code)
	}
	return code
}

// RunInPrivateNetns runs run inside a private network namespace and returns
// its result. If the current process was itself started by
// RunInPrivateNetns (or descends from such a process in the same namespace),
// run is called directly. Otherwise the current executable is re-executed
// with the same arguments, environment and stdio in a new network namespace
// (needs root), whose loopback interface is brought up; run is then called in
// that child, and this returns the child's exit code (128+signal if it was
// killed). SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the child, and
// the child is killed if this process dies.
//
// The error is non-nil only if the namespace could not be set up; run has
// not been called then.
func RunInPrivateNetns(run func() int) (int, error) {
	code, _, err := runInPrivateNetns(run)
	return code, err
}

// runInPrivateNetns is RunInPrivateNetns; parent reports that run was called
// in a re-executed child rather than in this process.
func runInPrivateNetns(run func() int) (code int, parent bool, err error) {
	if v := os.Getenv(envNetns); v != "" {
		id := netnsID()
		switch {
		case v == "1":
			if !InPrivateNetns() {
				return 0, false, errors.New("re-executed child is not in a private network namespace")
			}
			if err := loopbackUp(); err != nil {
				return 0, false, fmt.Errorf("bringing up lo: %w", err)
			}
			os.Setenv(envNetns, id)
			return run(), false, nil
		case v == id && InPrivateNetns():
			return run(), false, nil
		}
	}

	exe, err := os.Executable()
	if err != nil {
		return 0, false, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(withoutEnv(os.Environ(), envNetns), envNetns+"=1")
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		// A race-enabled binary sleeps 1s at exit by default; skip that in
		// the child (see also Main).
		cmd.Env = append(withoutEnv(cmd.Env, "GORACE"), "GORACE="+strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, false, fmt.Errorf("re-exec in new network namespace: %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	return exitCode(cmd.ProcessState, err), true, nil
}

func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		if err != nil {
			return 1
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func netnsID() string {
	s, _ := os.Readlink("/proc/self/ns/net")
	return s
}

// InPrivateNetns reports whether this process runs in a network namespace
// whose only interfaces are loopback ones, so that no packet can leave the
// machine.
func InPrivateNetns() bool {
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

// loopbackUp sets IFF_UP on "lo" (what `ip link set lo up` does).
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	// struct ifreq { char ifr_name[16]; union { short ifr_flags; ... } }, 40 bytes.
	var ifr [40]byte
	copy(ifr[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	flags := (*uint16)(unsafe.Pointer(&ifr[16]))
	if *flags&syscall.IFF_UP != 0 {
		return nil
	}
	*flags |= syscall.IFF_UP
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	return nil
}

// Require skips the test, loudly, when the lab cannot run here: not root,
// not inside a private network namespace (TestMain must call Main), or a
// needed program (sshd, ssh, nix-store, sudo, nsenter, mount) is missing.
// If FLEET_REQUIRE_LAB=1 (CI sets it) it fails the test instead.
func Require(t testing.TB) {
	t.Helper()
	reason := Unavailable()
	if reason == "" {
		return
	}
	if os.Getenv(EnvRequireLab) == "1" {
		t.Fatalf("end-to-end lab required (%s=1) but unavailable: %s", EnvRequireLab, reason)
	}
	t.Skipf("SKIPPING end-to-end lab test: %s (set %s=1 to make this a failure)", reason, EnvRequireLab)
}

// Unavailable returns why the lab cannot run in this process, or "" if it
// can.
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "need root"
	}
	if !InPrivateNetns() {
		return "not inside a private network namespace (TestMain must call lab.Main, or run under fleet-lab)"
	}
	if missing := MissingPrograms(); len(missing) > 0 {
		return "missing programs: " + strings.Join(missing, ", ") + " (apt-get install openssh-server openssh-client nix-bin sudo)"
	}
	return ""
}

// MissingPrograms returns the programs the lab (and its tests) need that are
// not installed: sshd, ssh, nix-store, sudo, nsenter, mount, sleep, sh.
func MissingPrograms() []string {
	var missing []string
	for _, name := range []string{"sshd", "ssh", "nix-store", "sudo", "nsenter", "mount", "sleep", "sh"} {
		if _, err := findBin(name); err != nil {
			missing = append(missing, name)
		}
	}
	return missing
}

func loud(msg string) {
	bar := strings.Repeat("*", 78)
	fmt.Fprintf(os.Stderr, "%s\n*** %s\n%s\n", bar, msg, bar)
}

// findBin looks name up in PATH and then in the usual system directories
// (root's PATH in a test environment may lack /usr/sbin).
func findBin(name string) (string, error) {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
