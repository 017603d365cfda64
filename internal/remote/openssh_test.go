package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"golang.org/x/crypto/ssh"
)

// realSSHD is an OpenSSH sshd on 127.0.0.1:2222 inside the test's private
// network namespace.
type realSSHD struct {
	pid      int // the listener
	dir      string
	hostKey  testKey
	port     int
	mu       sync.Mutex
	log      bytes.Buffer
	userKeys map[string]string // kind → identity file
}

func (s *realSSHD) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(p)
}

func (s *realSSHD) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func startSSHD(t *testing.T) *realSSHD {
	t.Helper()
	labtest.Require(t)
	bin, err := lab.LookPath("sshd") // labtest.Require made sure it is there
	if err != nil {
		t.Fatal(err)
	}
	s := &realSSHD{dir: t.TempDir(), hostKey: newKey(t, "ed25519"), port: 2222, userKeys: map[string]string{}}
	hostKeyFile := s.hostKey.writeIdentity(t, s.dir, "ssh_host_ed25519_key", "")
	var authorized []byte
	for _, kind := range []string{"ed25519", "rsa"} {
		k := newKey(t, kind)
		s.userKeys[kind] = k.writeIdentity(t, s.dir, "id_"+kind, "")
		authorized = append(authorized, ssh.MarshalAuthorizedKey(k.pub)...)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), authorized, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel INFO
# The session shell (root's, bash) would source ~/.bashrc, which on a
# developer machine may take long; give it an empty home.
SetEnv HOME=%s
`, s.port, hostKeyFile, filepath.Join(s.dir, "sshd.pid"), filepath.Join(s.dir, "authorized_keys"), s.dir)
	cfgFile := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd's privilege separation directory (normally made by its service).
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.logText())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", s.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen: %v\n%s", err, s.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// config writes an ssh_config and known_hosts for the lab host and returns
// Options reading it.
func (s *realSSHD) options(t *testing.T, knownHosts string, identity string) Options {
	t.Helper()
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(knownHosts), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("Host lab\n  HostName 127.0.0.1\n  Port %d\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile none\n  ConnectTimeout 5\n",
		s.port, identity, kh)
	cf := filepath.Join(dir, "config")
	if err := os.WriteFile(cf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return Options{ConfigFiles: []string{cf}}
}

func (s *realSSHD) dial(t *testing.T, o Options) (*Conn, error) {
	t.Helper()
	e, err := Resolve(o, Target{Host: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, e)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestOpenSSH(t *testing.T) {
	s := startSSHD(t)
	known := string(knownHostsLine(s.port, s.hostKey.pub))
	c, err := s.dial(t, s.options(t, known, s.userKeys["ed25519"]))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := c.Endpoint().String(); got != "root@127.0.0.1:2222" {
		t.Errorf("endpoint %q", got)
	}

	t.Run("echo", func(t *testing.T) {
		out, err := c.Output(ctx, "echo", "hello from", "openssh")
		if err != nil || string(out) != "hello from openssh\n" {
			t.Fatalf("%q %v", out, err)
		}
	})

	t.Run("stdin 5MB through cat", func(t *testing.T) {
		data := make([]byte, 5<<20)
		rand.Read(data)
		var out bytes.Buffer
		if err := c.Run(ctx, Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: &out}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("got %d bytes back, want the same %d", out.Len(), len(data))
		}
	})

	t.Run("exit code", func(t *testing.T) {
		err := c.Run(ctx, Cmd{Argv: []string{"sh", "-c", "echo failing >&2; exit 7"}})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 7 || ee.Stderr != "failing\n" || ee.Command != `sh -c 'echo failing >&2; exit 7'` {
			t.Fatalf("err = %v (%+v)", err, ee)
		}
		_, err = c.Output(ctx, "false")
		if !errors.As(err, &ee) || ee.Code != 1 {
			t.Fatalf("false: %v", err)
		}
	})

	t.Run("hostile argv", func(t *testing.T) {
		args := []string{`it's`, `"dq"`, "$(echo pwned)", "`echo pwned`", "line1\nline2", "${HOME}", "; echo pwned", "|", "&&", "~", "*", "  spaced  ", "-n", `\`, "'", "$'x'", "日本語", "#comment"}
		out, err := c.Output(ctx, append([]string{"printf", `%s\n`}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Join(args, "\n") + "\n"; string(out) != want {
			t.Fatalf("got  %q\nwant %q", out, want)
		}
	})

	t.Run("50 parallel sessions", func(t *testing.T) {
		parallelSessions(t, c, 50)
	})

	t.Run("50 parallel sessions, client limit above sshd MaxSessions", func(t *testing.T) {
		e := c.Endpoint()
		e.MaxSessions = 50
		c2, err := Dial(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		parallelSessions(t, c2, 50)
	})

	t.Run("cancel", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "got-term")
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		script := `trap 'kill $! 2>/dev/null; touch "$1"; exit 143' TERM; sleep 60 & wait`
		err := c.Run(ctx, Cmd{Argv: []string{"sh", "-c", script, "sh", marker}})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cancel took %s", d)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Error("the remote command never got SIGTERM")
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Plain sleep 60, as in a deploy step.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel2()
		start = time.Now()
		if err := c.Run(ctx2, Cmd{Argv: []string{"sleep", "60"}}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cancel took %s", d)
		}
		if out, err := c.Output(context.Background(), "echo", "still-alive"); err != nil || string(out) != "still-alive\n" {
			t.Errorf("connection after cancel: %q %v", out, err)
		}
	})

	t.Run("connection lost", func(t *testing.T) {
		before := s.children()
		c, err := s.dial(t, s.options(t, known, s.userKeys["ed25519"]))
		if err != nil {
			t.Fatal(err)
		}
		var ours []int
		for pid := range s.children() {
			if !before[pid] {
				ours = append(ours, pid)
			}
		}
		if len(ours) != 1 {
			t.Fatalf("cannot tell this connection's sshd process: %v", ours)
		}
		// The per-connection sshd process dies: the TCP connection is
		// closed under the running command.
		runUntilLost(t, c, 5, 300*time.Millisecond, func() { syscall.Kill(ours[0], syscall.SIGKILL) }, 10*time.Second)
	})

	t.Run("rsa identity", func(t *testing.T) {
		c, err := s.dial(t, s.options(t, known, s.userKeys["rsa"]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Output(ctx, "true"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown host key", func(t *testing.T) {
		_, err := s.dial(t, s.options(t, "", s.userKeys["ed25519"]))
		var ue *UnknownHostError
		if !errors.As(err, &ue) {
			t.Fatalf("err = %v (%T)", err, err)
		}
		if want := strings.TrimSpace(known); ue.KeyLine != want || ue.Fingerprint != ssh.FingerprintSHA256(s.hostKey.pub) || ue.Host != "[127.0.0.1]:2222" {
			t.Errorf("%+v\nwant line %q", ue, want)
		}
	})

	t.Run("accept-new", func(t *testing.T) {
		o := s.options(t, "", s.userKeys["ed25519"])
		o.StrictHostKeyChecking = "accept-new"
		if _, err := s.dial(t, o); err != nil {
			t.Fatal(err)
		}
		o.StrictHostKeyChecking = "yes"
		if _, err := s.dial(t, o); err != nil {
			t.Fatalf("after accept-new: %v", err)
		}
	})

	t.Run("changed host key", func(t *testing.T) {
		for _, strict := range []string{"yes", "accept-new"} {
			o := s.options(t, string(knownHostsLine(s.port, newKey(t, "ed25519").pub)), s.userKeys["ed25519"])
			o.StrictHostKeyChecking = strict
			_, err := s.dial(t, o)
			var ce *ChangedHostKeyError
			if !errors.As(err, &ce) || ce.Line != 1 || ce.Fingerprint != ssh.FingerprintSHA256(s.hostKey.pub) {
				t.Fatalf("%s: err = %v (%T)", strict, err, err)
			}
		}
	})
}

// children returns the pids of the listener's children (one per client
// connection).
func (s *realSSHD) children() map[int]bool {
	out := map[int]bool{}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", s.pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, w := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(w); err == nil {
				out[pid] = true
			}
		}
	}
	return out
}
