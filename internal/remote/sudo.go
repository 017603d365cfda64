package remote

// This file is sudo: the Secret a password is held in, the errors of a
// sudo that wants or refuses a password, and answering the prompt of
// `sudo -S` without the password ever reaching the command.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
)

// Secret is a password. It is a []byte (a []byte value can be assigned to
// a Secret field as is) that never prints: fmt shows "<redacted>" for any
// verb (also inside %v/%+v/%#v of a struct holding it) and JSON has
// "<redacted>".
type Secret []byte

const redacted = "<redacted>"

func (s Secret) String() string {
	if s == nil {
		return "<nil>"
	}
	return redacted
}

func (s Secret) GoString() string { return s.String() }

func (s Secret) Format(f fmt.State, verb rune) { io.WriteString(f, s.String()) }

func (s Secret) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	return []byte(`"` + redacted + `"`), nil
}

// ErrSudoPassword is matched (errors.Is) by the error of a Sudo command that
// failed because sudo wanted a password and none was given (`sudo -n`).
var ErrSudoPassword = errors.New("sudo needs a password")

// ErrSudoPasswordRejected is matched (errors.Is) by the error of a Sudo
// command whose sudo did not accept Endpoint.SudoPassword.
var ErrSudoPasswordRejected = errors.New("sudo rejected the password")

// SudoError is returned for a Sudo command when sudo wanted a password
// (`sudo -n`, no SudoPassword; matches ErrSudoPassword) or rejected the
// SudoPassword (Rejected; matches ErrSudoPasswordRejected). It unwraps to
// the ExitError. It never holds the password.
type SudoError struct {
	Host     string
	User     string
	Rejected bool
	Exit     *ExitError
}

func (e *SudoError) Error() string {
	if e.Rejected {
		return fmt.Sprintf("sudo on %s rejected the password for %s (%s: %s)",
			e.Host, e.User, e.Exit.Command, oneLine(e.Exit.Stderr))
	}
	return fmt.Sprintf("sudo on %s needs a password; fleet runs `sudo -n` when it has none to type: give %s passwordless sudo (NOPASSWD in sudoers), deploy as root, or supply %s's sudo password (%s: %s)",
		e.Host, e.User, e.User, e.Exit.Command, strings.TrimSpace(e.Exit.Stderr))
}

func (e *SudoError) Unwrap() error { return e.Exit }
func (e *SudoError) Is(target error) bool {
	if e.Rejected {
		return target == ErrSudoPasswordRejected
	}
	return target == ErrSudoPassword
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")), " ")
}

func sudoWantsPassword(stderr string) bool {
	return strings.Contains(stderr, "sudo: a password is required") ||
		strings.Contains(stderr, "sudo: a terminal is required")
}

func sudoRejected(stderr string) bool {
	return strings.Contains(stderr, "incorrect password attempt") || strings.Contains(stderr, "Sorry, try again.")
}

// With a SudoPassword, a Sudo command runs as
//
//	sudo -S -p PROMPT -- /bin/sh -c 'printf STARTED\n >&2 && exec "$@"' sh ARGV...
//
// (inside the pid-reporting wrapper). sudo writes PROMPT to stderr when it
// wants the password; only then is the password written to stdin, so that
// it never reaches the command when sudo does not ask (NOPASSWD, cached
// credentials). sudo reads the password byte by byte up to the newline.
// Once the command runs (STARTED on stderr) Cmd.Stdin is copied to it, so
// its stdin is exactly Cmd.Stdin. A second prompt means the password was
// wrong: stdin is closed, sudo gives up. The markers are taken off stderr.
//
// sudo shows the -p prompt unless sudoers sets passprompt_override with a
// passprompt of its own or a PAM module asks with a prompt other than
// "Password:" and passprompt_override is off (e.g. a one-time code): then
// no PROMPT line comes, nothing is typed, and the command waits for ctx.
const (
	sudoPromptLine  = "fleet-remote-sudo-prompt"
	sudoStartedLine = "fleet-remote-sudo-started"
	sudoStartScript = `printf '` + sudoStartedLine + `\n' >&2 && exec "$@"`
)

// sudoArgv returns the argv run for a Sudo command with a password, and
// the one shown in errors.
func sudoArgv(argv []string) (run, shown []string) {
	run = append([]string{"sudo", "-S", "-p", sudoPromptLine + "\n", "--", "/bin/sh", "-c", sudoStartScript, "sh"}, argv...)
	shown = append([]string{"sudo", "-S", "--"}, argv...)
	return run, shown
}

type sudoEvent int

const (
	sudoPrompted sudoEvent = iota
	sudoStarted
)

// sudoFilter takes sudo's prompts and the start marker off stderr, reports
// them on events, and passes everything else on: lines before the start,
// everything after it unchanged.
type sudoFilter struct {
	w       io.Writer
	mu      sync.Mutex
	buf     []byte
	started bool
	events  chan sudoEvent
}

func newSudoFilter(w io.Writer) *sudoFilter {
	return &sudoFilter{w: w, events: make(chan sudoEvent, 8)}
}

func (s *sudoFilter) emit(ev sudoEvent) {
	select {
	case s.events <- ev:
	default: // more prompts than anyone answers: sudo is failing anyway
	}
}

func (s *sudoFilter) Write(b []byte) (int, error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return s.w.Write(b)
	}
	n := len(b)
	s.buf = append(s.buf, b...)
	var out []byte
	for !s.started {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		line := s.buf[:i]
		switch {
		case bytes.HasSuffix(line, []byte(sudoPromptLine)):
			out = append(out, line[:len(line)-len(sudoPromptLine)]...)
			s.emit(sudoPrompted)
		case string(line) == sudoStartedLine:
			s.started = true
			s.emit(sudoStarted)
		case len(line) == 0:
			// sudo ends a prompt that got no answer with a newline.
		default:
			out = append(out, s.buf[:i+1]...)
		}
		s.buf = s.buf[i+1:]
	}
	if s.started || len(s.buf) > maxPidSearch {
		out = append(out, s.buf...)
		s.buf = nil
	}
	s.mu.Unlock()
	if len(out) > 0 {
		if _, err := s.w.Write(out); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush passes on what is held back; called when the command has ended.
func (s *sudoFilter) flush() {
	s.mu.Lock()
	out := s.buf
	s.buf = nil
	s.mu.Unlock()
	if len(out) > 0 {
		s.w.Write(out)
	}
}

func (s *sudoFilter) hasStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// answerSudo writes the password to stdin at sudo's first prompt, closes
// stdin at a second one (rejected), and once the command has started,
// copies in to stdin (or closes it if in is nil). It returns when done
// or when finished is closed.
func answerSudo(stdin io.WriteCloser, sf *sudoFilter, password Secret, in io.Reader, fail context.CancelCauseFunc,
	finished <-chan struct{}, rejected *atomic.Bool) {
	prompts := 0
	for {
		select {
		case ev := <-sf.events:
			if ev == sudoStarted {
				if in != nil {
					feedStdin(stdin, in, fail)
				} else {
					stdin.Close()
				}
				return
			}
			prompts++
			if prompts > 1 {
				rejected.Store(true)
				stdin.Close()
				return
			}
			line := make([]byte, len(password)+1)
			copy(line, password)
			line[len(password)] = '\n'
			_, err := stdin.Write(line)
			clear(line)
			if err != nil {
				return
			}
		case <-finished:
			return
		}
	}
}
