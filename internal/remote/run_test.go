package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunBasics(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.endpoint())
	ctx := context.Background()

	out, err := c.Output(ctx, "echo", "hello", "world")
	if err != nil || string(out) != "hello world\n" {
		t.Fatalf("echo: %q, %v", out, err)
	}

	err = c.Run(ctx, Cmd{Argv: []string{"sh", "-c", "echo oops >&2; exit 3"}})
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit 3: err = %v (%T), want *ExitError", err, err)
	}
	if ee.Code != 3 || ee.Command != `sh -c 'echo oops >&2; exit 3'` || ee.Stderr != "oops\n" || ee.Host != "testhost" {
		t.Errorf("ExitError = %+v", ee)
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "oops") {
		t.Errorf("error text %q", err)
	}

	_, err = c.Output(ctx, "sh", "-c", "echo to-stderr >&2; exit 1")
	if !errors.As(err, &ee) || ee.Stderr != "to-stderr\n" {
		t.Errorf("Output stderr capture: %v", err)
	}

	var stdout, stderr bytes.Buffer
	err = c.Run(ctx, Cmd{Argv: []string{"sh", "-c", "cat; echo err >&2"}, Stdin: strings.NewReader("in put"), Stdout: &stdout, Stderr: &stderr})
	if err != nil || stdout.String() != "in put" || stderr.String() != "err\n" {
		t.Errorf("stdin/stdout/stderr: %q %q %v", stdout.String(), stderr.String(), err)
	}

	// A command that exits without reading its stdin is not an error.
	big := bytes.Repeat([]byte("x"), 4<<20)
	if err := c.Run(ctx, Cmd{Argv: []string{"true"}, Stdin: bytes.NewReader(big)}); err != nil {
		t.Errorf("true with unread stdin: %v", err)
	}
	// Killed by a signal.
	err = c.Run(ctx, Cmd{Argv: []string{"sh", "-c", "kill -TERM $$"}})
	if !errors.As(err, &ee) || ee.Signal != "TERM" || ee.Code != 128+15 {
		t.Errorf("killed by TERM: %v (%+v)", err, ee)
	}
	// NUL bytes are refused before anything is sent.
	if err := c.Run(ctx, Cmd{Argv: []string{"echo", "a\x00b"}}); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("NUL argv: %v", err)
	}
	if err := c.Run(ctx, Cmd{}); err == nil {
		t.Error("empty argv accepted")
	}
}

func TestHostileArgv(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.endpoint())
	argv := []string{"it's", `"double"`, "$(touch /tmp/pwned)", "`id`", "a\nb", "${HOME}", "; rm -rf /", "~", "*", " ", "", "-n", "\\", "日本"}
	out, err := c.Output(context.Background(), append([]string{"printf", `%s\0`}, argv...)...)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if strings.Join(got, "|") != strings.Join(argv, "|") || len(got) != len(argv) {
		t.Errorf("round trip:\n got %q\nwant %q", got, argv)
	}
}

func TestStdinRoundTrip(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.endpoint())
	data := make([]byte, 2<<20)
	rand.Read(data)
	var out bytes.Buffer
	if err := c.Run(context.Background(), Cmd{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("cat returned %d bytes, want %d identical", out.Len(), len(data))
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Run(ctx, Cmd{Argv: []string{"sleep", "60"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %s", d)
	}
	if _, sigs := f.srv.recorded(); len(sigs) == 0 || sigs[0] != "TERM" {
		t.Errorf("signals sent: %q, want TERM", sigs)
	}
	// The connection is still good.
	if out, err := c.Output(context.Background(), "echo", "ok"); err != nil || string(out) != "ok\n" {
		t.Errorf("after cancel: %q %v", out, err)
	}
	// An already-cancelled context runs nothing.
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.Run(cancelled, Cmd{Argv: []string{"echo"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestSudo(t *testing.T) {
	bin := t.TempDir()
	// A sudo that wants a password, as `sudo -n` reports it.
	script := "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(s *testServer) { s.path = bin })
	e := f.endpoint()
	e.User = "deploy"
	c := dial(t, e)
	err := c.Run(context.Background(), Cmd{Argv: []string{"nix-env", "--version"}, Sudo: true})
	if !errors.Is(err, ErrSudoPassword) {
		t.Fatalf("err = %v, want ErrSudoPassword", err)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Command != "sudo -n -- nix-env --version" {
		t.Errorf("ExitError: %+v", ee)
	}
	if !strings.Contains(err.Error(), "sudo on testhost needs a password") {
		t.Errorf("message: %q", err)
	}
	// Sudo without Sudo: no prefix; as root: no prefix either.
	c.Run(context.Background(), Cmd{Argv: []string{"true"}})
	e.User = "root"
	c2 := dial(t, e)
	if err := c2.Run(context.Background(), Cmd{Argv: []string{"true"}, Sudo: true}); err != nil {
		t.Fatal(err)
	}
	cmds, _ := f.srv.recorded()
	var want []string
	for _, argv := range [][]string{{"sudo", "-n", "--", "nix-env", "--version"}, {"true"}, {"true"}} {
		w, _ := wrapCommand(argv)
		want = append(want, w)
	}
	if strings.Join(cmds, "|") != strings.Join(want, "|") {
		t.Errorf("commands run: %q, want %q", cmds, want)
	}
}

func TestParallelSessionsAndServerLimit(t *testing.T) {
	// The server allows 4 sessions; the client thinks 10: it must adapt.
	f := newFixture(t, func(s *testServer) { s.maxSessions = 4 })
	c := dial(t, f.endpoint())
	parallelSessions(t, c, 30)
	if f.srv.connections() != 1 {
		t.Errorf("server saw %d connections, want 1", f.srv.connections())
	}
}

func TestConnLost(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.endpoint())
	runUntilLost(t, c, 30, 200*time.Millisecond, f.srv.killConns, 5*time.Second)
	if err := c.Run(context.Background(), Cmd{Argv: []string{"true"}}); !errors.Is(err, ErrConnLost) {
		t.Errorf("Run after loss: %v", err)
	}
}

func TestKeepaliveDetectsStall(t *testing.T) {
	f := newFixture(t, func(s *testServer) { s.ignoreKeepalives = true })
	e := f.endpoint()
	e.ServerAliveInterval = 50 * time.Millisecond
	e.ServerAliveCountMax = 3
	c := dial(t, e)
	start := time.Now()
	err := c.Run(context.Background(), Cmd{Argv: []string{"sleep", "20"}})
	if !errors.Is(err, ErrConnLost) || !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("err = %v, want ErrConnLost by keepalive", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.endpoint())
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := c.Run(context.Background(), Cmd{Argv: []string{"true"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err after Close: %v", c.Err())
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'a'
	}
	r.n -= n
	return n, nil
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("no space left") }

func TestLocalIOErrors(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.endpoint())
	// A failing stdin must not reach the command as a clean EOF.
	var out bytes.Buffer
	err := c.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "wc -c; echo finished"}, Stdin: &failingReader{n: 1000}, Stdout: &out})
	if err == nil || !strings.Contains(err.Error(), "reading stdin: disk on fire") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(out.String(), "finished") {
		t.Errorf("command completed on truncated stdin: %q", out.String())
	}
	// A failing stdout stops the command instead of hanging.
	start := time.Now()
	err = c.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "while :; do echo yyyyyyyyyyyyyyyy; done"}, Stdout: failingWriter{}})
	if err == nil || !strings.Contains(err.Error(), "writing stdout: no space left") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestPrepare: the next Run takes the session Prepare opened — one
// session in all, its command run — and, when the server closed that
// session while it waited, runs in a new one instead.
func TestPrepare(t *testing.T) {
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprintf("closed=%v", closed), func(t *testing.T) {
			var gone chan struct{}
			f := newFixture(t, func(s *testServer) {
				if closed {
					gone = make(chan struct{})
					s.closedFirstSession = gone
				}
			})
			c := dial(t, f.endpoint())
			c.Prepare()
			c.Prepare() // one is prepared already: nothing more
			if closed {
				<-gone
			}
			out, err := c.Output(context.Background(), "echo", "hi")
			if err != nil || string(out) != "hi\n" {
				t.Fatalf("Output = %q, %v", out, err)
			}
			f.srv.mu.Lock()
			n := f.srv.sessions
			f.srv.mu.Unlock()
			if want := map[bool]int{false: 1, true: 2}[closed]; n != want {
				t.Errorf("the server opened %d sessions, want %d", n, want)
			}
		})
	}
}
