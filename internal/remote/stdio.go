package remote

// This file stands between a session and the caller's Stdin, Stdout and
// Stderr: a failure of the caller's side stops the command (rather than
// feeding it a truncated stdin, or leaving it blocked on output nobody
// reads) and is told apart from the command's own failure; and nothing
// touches the caller's writers once Run has returned.

import (
	"context"
	"io"
	"sync"
)

// localIOError is a failure of the caller's Stdin, Stdout or Stderr.
type localIOError struct {
	what string
	err  error
}

func (e *localIOError) Error() string { return e.what + ": " + e.err.Error() }
func (e *localIOError) Unwrap() error { return e.err }

// feedStdin copies r to the session's stdin and then sends EOF. If reading
// r fails, no EOF is sent: the run is cancelled instead, so the command is
// not fed a silently truncated stream. A failed write means the command is
// gone (it exited without reading everything); that is not an error.
func feedStdin(w io.WriteCloser, r io.Reader, fail context.CancelCauseFunc) {
	er := &errReader{r: r}
	_, err := io.Copy(w, er)
	if er.err != nil {
		fail(&localIOError{"reading stdin", er.err})
		return
	}
	if err == nil {
		w.Close()
	}
}

// errReader remembers r's read error, which io.Copy would not tell apart
// from a failed write.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// gate guards the caller's writers: after close, writes are dropped, so
// nothing touches them once Run has returned. The first write error
// cancels the run (fail) and later output is drained and dropped.
type gate struct {
	mu     sync.Mutex
	closed bool
	failed bool
	fail   context.CancelCauseFunc
}

func (g *gate) writer(w io.Writer, what string) io.Writer {
	return &gatedWriter{g: g, w: w, what: what}
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

type gatedWriter struct {
	g    *gate
	w    io.Writer
	what string
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	if w.g.closed || w.g.failed {
		return len(p), nil
	}
	n, err := w.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.g.failed = true
		w.g.fail(&localIOError{"writing " + w.what, err})
	}
	return len(p), nil
}
