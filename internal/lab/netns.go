package lab

// This file keeps the lab off the network: every lab runs in a private
// network namespace, entered by re-executing the current program in one
// (RunInPrivateNetns), so that a test, the demo or the bench cannot reach a
// real machine by mistake.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"unsafe"
)

// envNetns marks a process that RunInPrivateNetns re-executed into a fresh
// network namespace. The re-executed child sees "1" ("user" if it is in a
// user namespace of its own too) and replaces it with the id of its
// namespace ("net:[4026532…]", prefixed "user:"), so that descendants running
// in the same namespace (fuzz workers, nested tools) do not re-execute again,
// while processes in any other namespace (e.g. `fleet-lab -- go test ./...`)
// get a fresh namespace of their own.
const envNetns = "FLEET_LAB_NETNS"

// RunInPrivateNetns runs run inside a private network namespace and returns
// its result. If the current process was itself started by
// RunInPrivateNetns (or descends from such a process in the same namespace),
// run is called directly. Otherwise the current executable is re-executed
// with the same arguments, environment and stdio in a new network namespace,
// whose loopback interface is brought up; run is then called in that child,
// and this returns the child's exit code (128+signal if it was killed).
// SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the child, and the
// child is killed if this process dies.
//
// As root the child stays root. Anyone else gets, where the kernel allows
// unprivileged user namespaces, a user namespace of its own in which it is
// uid 0: enough for sockets on loopback, not for a lab (Start refuses, and
// Unavailable says why).
//
// The error is non-nil only if the namespace could not be set up; run has
// not been called then.
func RunInPrivateNetns(run func() int) (int, error) {
	if v := os.Getenv(envNetns); v != "" {
		id := netnsID()
		switch {
		case v == "1" || v == "user":
			if !InPrivateNetns() {
				return 0, errors.New("re-executed child is not in a private network namespace")
			}
			if err := loopbackUp(); err != nil {
				return 0, fmt.Errorf("bringing up lo: %w", err)
			}
			if v == "user" {
				id = "user:" + id
			}
			os.Setenv(envNetns, id)
			return run(), nil
		case (v == id || v == "user:"+id) && InPrivateNetns():
			return run(), nil
		}
	}

	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	marker := "1"
	if os.Geteuid() != 0 {
		marker = "user"
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	cmd.Env = append(withoutEnv(os.Environ(), envNetns), envNetns+"="+marker)
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		// A race-enabled binary sleeps 1s at exit by default; skip that in
		// the child (see also labtest.Main).
		cmd.Env = append(withoutEnv(cmd.Env, "GORACE"), "GORACE="+strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("re-exec in new network namespace: %w", err)
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
	return exitCode(cmd.ProcessState, err), nil
}

// privileged reports whether this process is root outside any user
// namespace that RunInPrivateNetns made: the lab bind-mounts over /etc and
// gives files to its users, which only the real root can do.
func privileged() bool {
	return os.Geteuid() == 0 && !strings.HasPrefix(os.Getenv(envNetns), "user")
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
