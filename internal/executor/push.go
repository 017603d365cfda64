package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/internal/nar"
	"github.com/fleet-deploy/fleet/internal/nixserve"
	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// Push copies the part of closure that h lacks, in one `nix-store
// --serve --write` process on the host (internal/nixserve): it asks
// which of the closure's paths the host has, then adds the others,
// dependencies first, each NAR written here from the store (internal/nar)
// as it streams. The paths' metadata comes from the run's one local
// query (pathinfos.go); no local process runs per host. Nix registers a
// path only once its NAR is complete and its hash checked, so an
// interrupted push leaves no half path. A host that runs the closure, or
// whose system profile points at it, has all of it: its push starts no
// nix-store there, and says what the host runs (see serve).
func (e *Executor) Push(ctx context.Context, h *runtime.Host, closure string, progress runtime.ProgressFunc) (*runtime.PushResult, error) {
	if !isStorePath(closure) {
		return nil, &runtime.HostError{Host: h.Name, Step: "push", Err: fmt.Errorf("%q is not a /nix/store path", closure)}
	}
	m, op, err := e.machineOp(h)
	if err != nil {
		return nil, hostErr(h, "push", err)
	}
	res, err := e.push(ctx, m, op, closure, progress)
	return res, hostErr(h, "push", err)
}

func (e *Executor) push(ctx context.Context, m *machine, op int, closure string, progress runtime.ProgressFunc) (*runtime.PushResult, error) {
	if m.h.BuildOnTarget {
		// Built there: nothing to copy, but make sure it is there.
		err := m.serve(ctx, op, closure, func(s *nixserve.Session) error {
			valid, err := s.QueryValidPaths([]string{closure}, false, false)
			if err == nil && !valid[closure] {
				err = fmt.Errorf("%s is not in the host's store", closure)
			}
			return err
		})
		return &runtime.PushResult{Paths: 1}, err
	}
	// The metadata comes from this machine's store while the host's
	// first answer is on its way.
	var paths []*nixserve.PathInfo
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		paths, err = e.paths.of(ctx, closure)
	}()
	return m.copy(ctx, op, closure, func() ([]*nixserve.PathInfo, error) {
		<-done
		return paths, err
	}, progress)
}

// copy sends those of closure's closure (from paths: dependencies first)
// that the machine lacks, telling progress (if any) the NAR bytes sent.
func (m *machine) copy(ctx context.Context, op int, closure string, paths func() ([]*nixserve.PathInfo, error), progress runtime.ProgressFunc) (*runtime.PushResult, error) {
	res := &runtime.PushResult{}
	err := m.serve(ctx, op, closure, func(s *nixserve.Session) error {
		paths, err := paths()
		if err != nil {
			return &localError{err}
		}
		res.Paths = len(paths)
		names := make([]string, len(paths))
		for i, p := range paths {
			names[i] = p.Path
		}
		// lock: what the host has stays there (a temporary GC root) until
		// the paths that need it have arrived. substitute: the host first
		// fetches what its substituters have of the rest; the answer
		// counts those in, so only what they lack is sent. (Nix logs a
		// failed substitution as a warning and answers all the same.)
		valid, err := s.QueryValidPaths(names, true, m.h.Substitute)
		if err != nil {
			return fmt.Errorf("asking which paths are missing: %w", err)
		}
		var missing []nixserve.PathInfo
		w := &progressWriter{report: progress, last: time.Now()}
		for _, p := range paths {
			if !valid[p.Path] {
				missing = append(missing, *p)
				w.total += p.NarSize
			}
		}
		res.Missing = len(missing)
		if len(missing) == 0 {
			return nil
		}
		err = s.AddToStoreNars(missing, func(p nixserve.PathInfo, to io.Writer) error {
			w.w, w.err = to, nil
			if err := nar.Dump(w, p.Path); err != nil && w.err == nil {
				return &localError{err} // this store, not the host
			}
			return w.err
		})
		res.Bytes = w.n
		if err == nil {
			progress.Report(w.n, w.total, "bytes")
		}
		return err
	})
	return res, err
}

// serve runs `nix-store --serve --write` on the machine (as root) and
// hands fn the session, unless the machine has closure already: then
// pushScript says so and what the machine runs (kept for an activation
// that follows, see fromSeen), no server starts and fn is not called.
// op is the push's operation number (Executor.machineOp). The session is
// the one serveAhead started, if there is one, else a new one. When fn
// returns, the server's stdin is closed: it exits, dropping any path
// whose NAR was cut short.
//
// The error is fn's when it is about this machine (a store path that
// cannot be read); else the command's own (the host's words on stderr,
// a lost connection, ctx) if it failed; else fn's.
func (m *machine) serve(ctx context.Context, op int, closure string, fn func(*nixserve.Session) error) error {
	p := m.takeAhead()
	if p != nil {
		if _, err := io.WriteString(p.inW, closure+"\n"); err != nil {
			p.end()
			p = nil
		}
	}
	if p == nil {
		var err error
		if p, err = m.startServe(closure); err != nil {
			return err
		}
	}
	defer context.AfterFunc(ctx, p.cancel)()
	// fn's first question goes out at once; the banner is read as it
	// arrives, and before the server's answer.
	b := readBanner(bufio.NewReader(p.outR), m.prepare) // the host changes: its activation follows the push
	err := fn(nixserve.Open(b, p.inW))
	<-b.done // it comes, or the command ends
	if b.seen != nil {
		err = nil // the host has it: what fn met on the way (errHostHas, a closed pipe) does not matter
	}
	runErr := p.end()
	switch {
	case runErr != nil && !localFault(err):
		return runErr
	case err == nil && b.seen != nil:
		b.seen.closure, b.seen.op = closure, op
		m.rec.Lock()
		m.seen = b.seen
		m.rec.Unlock()
	}
	return err
}

// serveProc is pushScript running on the machine: its stdin and stdout
// are OS pipes, so that a Host that runs a local process passes them on
// as they are and returns when the process ends.
type serveProc struct {
	inW, outR *os.File
	ran       chan error // the command's outcome
	cancel    context.CancelFunc
}

// startServe starts pushScript for closure ("-": the first line of its
// stdin). Its context is its own: serve ties it to the push's.
func (m *machine) startServe(closure string) (*serveProc, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &serveProc{inW: inW, outR: outR, ran: make(chan error, 1), cancel: cancel}
	go func() {
		argv := append([]string{"sh", "-c", pushScript, "fleet-push", closure}, nixserve.Command...)
		err := m.host.Run(ctx, remote.Cmd{Argv: argv, Sudo: m.sudo(asRoot), Stdin: inR, Stdout: outW})
		inR.Close()  // our writes fail from now on,
		outW.Close() // and our reads end
		p.ran <- err
	}()
	return p, nil
}

// end closes the process's stdin (it exits) and returns its outcome.
func (p *serveProc) end() error {
	p.outR.Close() // after an error, the server may still be writing an answer
	p.inW.Close()
	err := <-p.ran
	p.cancel()
	return err
}

// serveAhead starts the machine's next push before its closure is known
// (fleet run's reachability check does, right after it connected, while
// the build runs): its session is open and its command started when the
// push comes, which then costs no round trip before its first question.
// Until then it waits on the host, reading its stdin, having done
// nothing; Executor.Close ends it.
// It starts one only if allowAhead came first and no operation on the
// machine since (takeAhead) did.
func (m *machine) serveAhead() {
	m.rec.Lock()
	defer m.rec.Unlock()
	if !m.aheadOK || m.ahead != nil {
		return
	}
	if p, err := m.startServe("-"); err == nil {
		m.ahead = p
	}
}

// allowAhead lets serveAhead start a push.
func (m *machine) allowAhead() {
	m.rec.Lock()
	m.aheadOK = true
	m.rec.Unlock()
}

// endAhead ends the push serveAhead started, if no push took it.
func (m *machine) endAhead() {
	if p := m.takeAhead(); p != nil {
		p.end()
	}
}

// takeAhead returns the push serveAhead started, unless its command
// ended meanwhile (a lost connection: the push then starts anew).
func (m *machine) takeAhead() *serveProc {
	m.rec.Lock()
	p := m.ahead
	m.ahead, m.aheadOK = nil, false
	m.rec.Unlock()
	if p == nil {
		return nil
	}
	select {
	case err := <-p.ran:
		p.ran <- err
		p.end()
		return nil
	default:
		return p
	}
}

// errHostHas is what the server's output reads as when the host has
// the closure: pushScript exited without starting a server.
var errHostHas = errors.New("the host has the closure")

// banner is pushScript's first line, read as soon as it arrives, and
// the server's output after it.
type banner struct {
	r    *bufio.Reader
	done chan struct{} // closed once the line is read
	seen *hostSeen     // for "fleet-has": what the host runs
	err  error
}

// readBanner starts reading the banner from r: "fleet-serve" (then
// onServe is called, and the server's output follows) or "fleet-has"
// and what the host runs.
func readBanner(r *bufio.Reader, onServe func()) *banner {
	b := &banner{r: r, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		line, err := r.ReadSlice('\n') // at most the reader's buffer: 4 KiB
		f := strings.Split(strings.TrimSuffix(string(line), "\n"), "\t")
		switch {
		case err != nil && len(line) == 0:
			b.err = errors.New("the push ended before it started") // the command's own error says why
		case err == nil && len(f) == 1 && f[0] == "fleet-serve":
			onServe()
		case err == nil && len(f) == 6 && f[0] == "fleet-has":
			b.seen = &hostSeen{current: f[1], profile: f[2], link: f[3], boot: f[4], ok: f[5]}
		default: // a line that is not the banner, or no line end within 4 KiB
			b.err = fmt.Errorf("the host printed %.200q before the push started (its shell must not print to stdout)", line)
		}
	}()
	return b
}

// Read reads the server's output, once the banner said there is one;
// errHostHas when it said the host has the closure.
func (b *banner) Read(p []byte) (int, error) {
	<-b.done
	switch {
	case b.err != nil:
		return 0, b.err
	case b.seen != nil:
		return 0, errHostHas
	}
	return b.r.Read(p)
}

// localFault reports whether err is about this machine: its store, not the
// host or the connection.
func localFault(err error) bool {
	var local *localError
	return errors.As(err, &local) || errors.Is(err, nixserve.ErrNARSize)
}

// localError is a failure of this machine's, not of the host or the
// connection.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// progressWriter counts the bytes of a push and reports them at most
// ten times a second. It keeps the error of the writer under it, to
// tell the host's failures from this store's.
type progressWriter struct {
	w        io.Writer
	err      error
	n, total int64
	report   runtime.ProgressFunc
	last     time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if err != nil {
		p.err = err
	}
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		p.report.Report(p.n, p.total, "bytes")
	}
	return n, err
}

// isStorePath accepts /nix/store/<hash>-<name> and nothing else, so that
// no other string ever reaches a remote nix command as a closure.
func isStorePath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/nix/store/")
	if !ok || len(rest) < 34 || rest[32] != '-' || strings.ContainsAny(rest, "/\x00\n") {
		return false
	}
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r)) {
			return false
		}
	}
	return true
}
