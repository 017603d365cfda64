package remote

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server on 127.0.0.1:0 that runs exec
// requests with /bin/sh -c, as sshd would with a POSIX login shell.
type testServer struct {
	t        testing.TB
	ln       net.Listener
	port     int
	hostKeys []testKey
	// path, if set, is prepended to PATH of commands (fake sudo etc.).
	path string
	// maxSessions, if > 0, makes the server refuse sessions beyond it per
	// connection, as sshd's MaxSessions does.
	maxSessions int
	// ignoreKeepalives leaves global requests unanswered (a stalled peer).
	ignoreKeepalives bool
	// forwarding allows direct-tcpip channels (a jump host).
	forwarding bool
	// dropFirst makes the server close its first dropFirst connections
	// right after accepting them (sshd over MaxStartups).
	dropFirst int
	// closedFirstSession, if set, makes the server close its first
	// session channel as soon as it opened (sshd's ChannelTimeout on an
	// idle session), closing the channel once it has.
	closedFirstSession chan struct{}

	mu         sync.Mutex
	authorized map[string]bool
	commands   []string
	signals    []string
	netConns   []net.Conn
	users      []string
	accepted   int
	sessions   int      // session channels opened
	live       int      // connections not closed yet
	forwards   []string // direct-tcpip destinations asked for
	wg         sync.WaitGroup
}

type serverOpt func(*testServer)

func newTestServer(t testing.TB, opts ...serverOpt) *testServer {
	t.Helper()
	labtest.RequireNetns(t)
	s := &testServer{t: t, authorized: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	if len(s.hostKeys) == 0 {
		s.hostKeys = []testKey{newKey(t, "ed25519")}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) authorize(pub ssh.PublicKey) {
	s.mu.Lock()
	s.authorized[string(pub.Marshal())] = true
	s.mu.Unlock()
}

func (s *testServer) close() {
	s.ln.Close()
	s.killConns()
	s.wg.Wait()
}

func (s *testServer) killConns() {
	s.mu.Lock()
	for _, c := range s.netConns {
		c.Close()
	}
	s.mu.Unlock()
}

func (s *testServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func (s *testServer) recorded() (cmds, sigs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...), append([]string(nil), s.signals...)
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.netConns = append(s.netConns, nc)
		s.accepted++
		drop := s.accepted <= s.dropFirst
		s.live++
		s.mu.Unlock()
		if drop {
			nc.Close()
			s.mu.Lock()
			s.live--
			s.mu.Unlock()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(nc)
			s.mu.Lock()
			s.live--
			s.mu.Unlock()
		}()
	}
}

func (s *testServer) handleConn(nc net.Conn) {
	defer nc.Close()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.authorized[string(key.Marshal())] {
				s.users = append(s.users, md.User())
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("unauthorized key")
		},
	}
	for _, k := range s.hostKeys {
		cfg.AddHostKey(k.signer)
	}
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go func() {
		for r := range reqs {
			if s.ignoreKeepalives {
				continue
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	var open sync.WaitGroup
	var mu sync.Mutex
	active := 0
	for nch := range chans {
		if nch.ChannelType() == "direct-tcpip" && s.forwarding {
			open.Add(1)
			go func() {
				defer open.Done()
				s.forward(nch)
			}()
			continue
		}
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		mu.Lock()
		if s.maxSessions > 0 && active >= s.maxSessions {
			mu.Unlock()
			nch.Reject(ssh.Prohibited, "open failed")
			continue
		}
		active++
		mu.Unlock()
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.sessions++
		first := s.sessions == 1
		s.mu.Unlock()
		if first && s.closedFirstSession != nil {
			go ssh.DiscardRequests(creqs)
			ch.Close()
			mu.Lock()
			active--
			mu.Unlock()
			close(s.closedFirstSession)
			continue
		}
		open.Add(1)
		go func() {
			defer open.Done()
			s.handleSession(ch, creqs)
			mu.Lock()
			active--
			mu.Unlock()
		}()
	}
	open.Wait()
}

func (s *testServer) liveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

func (s *testServer) forwarded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forwards...)
}

// forward serves a direct-tcpip channel, as sshd does for ssh -J.
func (s *testServer) forward(nch ssh.NewChannel) {
	var req struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &req); err != nil {
		nch.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	addr := net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port)))
	s.mu.Lock()
	s.forwards = append(s.forwards, addr)
	s.mu.Unlock()
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		tc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { io.Copy(tc, ch); done <- struct{}{} }()
	go func() { io.Copy(ch, tc); done <- struct{}{} }()
	<-done // either side ended: SSH needs no half-close
	ch.Close()
	tc.Close()
	<-done
}

func (s *testServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var proc *exec.Cmd
	exited := make(chan struct{})
	for {
		var req *ssh.Request
		var ok bool
		select {
		case req, ok = <-reqs:
			if !ok {
				if proc != nil && proc.Process != nil {
					syscall.Kill(-proc.Process.Pid, syscall.SIGKILL)
					<-exited
				}
				return
			}
		case <-exited:
			return
		}
		switch req.Type {
		case "exec":
			if proc != nil || len(req.Payload) < 4 {
				req.Reply(false, nil)
				continue
			}
			n := binary.BigEndian.Uint32(req.Payload)
			command := string(req.Payload[4 : 4+n])
			s.mu.Lock()
			s.commands = append(s.commands, command)
			s.mu.Unlock()
			// Commands from shell.Join are one simple command; exec it as
			// bash -c would, so that signals reach it.
			proc = exec.Command("/bin/sh", "-c", "exec "+command)
			proc.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
			if s.path != "" {
				proc.Env[0] = "PATH=" + s.path + ":/usr/bin:/bin"
			}
			proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdin, _ := proc.StdinPipe()
			proc.Stdout = ch
			proc.Stderr = ch.Stderr()
			if err := proc.Start(); err != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			go func() {
				io.Copy(stdin, ch)
				stdin.Close()
			}()
			go func() {
				err := proc.Wait()
				status := uint32(0)
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
						sig := signalName(ws.Signal())
						payload := ssh.Marshal(struct {
							Signal     string
							CoreDumped bool
							Error      string
							Lang       string
						}{sig, false, "", ""})
						ch.SendRequest("exit-signal", false, payload)
						close(exited)
						return
					}
					status = uint32(ee.ExitCode())
				}
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
				close(exited)
			}()
		case "signal":
			var sig struct{ Name string }
			ssh.Unmarshal(req.Payload, &sig)
			s.mu.Lock()
			s.signals = append(s.signals, sig.Name)
			s.mu.Unlock()
			if proc != nil && proc.Process != nil && sig.Name == "TERM" {
				syscall.Kill(-proc.Process.Pid, syscall.SIGTERM)
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGPIPE:
		return "PIPE"
	}
	return strconv.Itoa(int(s))
}
