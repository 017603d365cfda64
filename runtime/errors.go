package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// The errors of fleet, by what a person should do about them: a
// ScriptError (fix fleet.star) and a UsageError (fix the command line)
// exit 2; a HostError, HostFailures and a Stop (a host failed, or the
// rollout decided to stop) exit 1; an Interrupted exits 130.

// UsageError is a mistake on the command line; fleet exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Stop is a deliberate end of a rollout: fail() in a script, or a
// strategy whose failure budget is spent. fleet exits 1, like a failed
// host, not 2 like a broken script.
type Stop struct{ Msg string }

func (e *Stop) Error() string { return e.Msg }

// HostError is a failure of one step on one host. Its presence in an
// error chain makes fleet exit 1 (a host failed) rather than 2 (the
// script is wrong).
type HostError struct {
	Host string
	Step string // build, push, activate, run, ...
	Err  error
	Log  string // last lines of the step's output, if any
}

func (e *HostError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s failed: %v", e.Host, e.Step, e.Err)
	if e.Log != "" {
		b.WriteString("\n")
		for _, l := range strings.Split(strings.TrimRight(e.Log, "\n"), "\n") {
			fmt.Fprintf(&b, "  %s | %s\n", e.Host, l)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *HostError) Unwrap() error { return e.Err }

// HostFailures are the failed steps of a run whose script finished: the
// hosts failed, the rollout did what it was told. fleet exits 1.
type HostFailures struct {
	Errs []*HostError
}

func (e *HostFailures) Error() string {
	var hosts []string
	for _, he := range e.Errs {
		hosts = append(hosts, he.Host+" ("+he.Step+")")
	}
	return fmt.Sprintf("%d failed: %s", len(e.Errs), strings.Join(hosts, ", "))
}

// Unwrap exposes each failure to errors.As.
func (e *HostFailures) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, he := range e.Errs {
		errs[i] = he
	}
	return errs
}

// Interrupted is the error of work refused after an interrupt.
type Interrupted struct{ What string }

func (e *Interrupted) Error() string {
	return fmt.Sprintf("interrupted: %s not started", e.What)
}

// Is makes an Interrupted match context.Canceled (exit 130).
func (e *Interrupted) Is(target error) bool { return target == context.Canceled }

// ScriptError is an error from evaluating fleet.star. Its Error method
// gives the one-line cause; Detail gives what a person needs to act:
// file:line:col, the offending line with a caret, and the Starlark
// backtrace.
type ScriptError struct {
	err   error
	src   func(file string) []byte
	names []string // predeclared names, for "did you mean" hints
}

func (e *ScriptError) Unwrap() error { return e.err }

func (e *ScriptError) Error() string {
	pos, msg, _ := e.locate()
	if pos.IsValid() {
		return fmt.Sprintf("%s: %s", pos, msg)
	}
	return msg
}

// Detail renders the error with source context and backtrace.
func (e *ScriptError) Detail() string {
	pos, msg, stack := e.locate()
	var b strings.Builder
	if pos.IsValid() {
		fmt.Fprintf(&b, "%s: %s\n", pos, msg)
		b.WriteString(e.snippet(pos))
	} else {
		fmt.Fprintf(&b, "%s\n", msg)
	}
	if len(stack) > 1 {
		b.WriteString("Traceback (most recent call last):\n")
		writeFrames(&b, stack)
	}
	return strings.TrimRight(b.String(), "\n")
}

// locate finds the innermost error that has a source position: a load
// failure inside a loaded file is reported where it happened, not at the
// load statement.
func (e *ScriptError) locate() (syntax.Position, string, starlark.CallStack) {
	var (
		pos   syntax.Position
		msg   = e.err.Error()
		stack starlark.CallStack
	)
	for err := e.err; err != nil; err = errors.Unwrap(err) {
		switch x := err.(type) {
		case *starlark.EvalError:
			st := userFrames(x.CallStack)
			if len(st) > 0 {
				pos, stack = st[len(st)-1].Pos, st
				msg = x.Msg
				if he := hostErrorIn(x); he != nil {
					msg = he.Error()
				}
			}
		case syntax.Error:
			return x.Pos, x.Msg, nil
		case resolve.ErrorList:
			if len(x) > 0 {
				return x[0].Pos, e.hint(x[0].Msg), nil
			}
		case resolve.Error:
			return x.Pos, e.hint(x.Msg), nil
		}
	}
	return pos, msg, stack
}

// hint adds "did you mean" to an undefined name that is close to a
// builtin; the resolver only suggests names of the file itself.
func (e *ScriptError) hint(msg string) string {
	name, ok := strings.CutPrefix(msg, "undefined: ")
	if !ok || strings.Contains(msg, "did you mean") {
		return msg
	}
	if n := nearest(name, e.names); n != "" {
		return fmt.Sprintf("%s (did you mean %s?)", msg, n)
	}
	return msg
}

func hostErrorIn(err error) *HostError {
	var he *HostError
	if errors.As(err, &he) {
		return he
	}
	return nil
}

// userFrames drops frames of Go builtins, which have no source.
func userFrames(st starlark.CallStack) starlark.CallStack {
	var out starlark.CallStack
	for _, fr := range st {
		if fr.Pos.Filename() != "<builtin>" && fr.Pos.IsValid() {
			out = append(out, fr)
		}
	}
	return out
}

func (e *ScriptError) snippet(pos syntax.Position) string {
	if e.src == nil {
		return ""
	}
	src := e.src(pos.Filename())
	lines := bytes.Split(src, []byte("\n"))
	n := int(pos.Line)
	if n < 1 || n > len(lines) {
		return ""
	}
	line := strings.TrimRight(string(lines[n-1]), "\r")
	prefix := fmt.Sprintf("%5d | ", n)
	col := int(pos.Col) // in runes
	// The line is shown with control characters and bytes that are not
	// UTF-8 escaped as ui.Sanitize escapes them (a name may hold them:
	// "\x1b[2J"), tabs kept, and the caret under the column counts the
	// escapes.
	var shown, pad strings.Builder
	for i, c := 0, 1; i < len(line); c++ {
		r, size := utf8.DecodeRuneInString(line[i:])
		s := line[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			s = fmt.Sprintf(`\x%02x`, line[i])
		case r == '\t':
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			s = fmt.Sprintf(`\x%02x`, r)
		case r == 0x2028 || r == 0x2029:
			s = fmt.Sprintf(`\u%04x`, r)
		}
		shown.WriteString(s)
		if c < col {
			if r == '\t' {
				pad.WriteByte('\t')
			} else {
				pad.WriteString(strings.Repeat(" ", utf8.RuneCountInString(s)))
			}
		}
		i += size
	}
	return fmt.Sprintf("%s%s\n%s%s^\n", prefix, shown.String(), strings.Repeat(" ", len(prefix)-2)+"| ", pad.String())
}

// writeFrames prints a backtrace with runs of the same frame (deep
// recursion) folded, and at most 20 frames either side.
func writeFrames(b *strings.Builder, stack starlark.CallStack) {
	type run struct {
		fr starlark.CallFrame
		n  int
	}
	var runs []run
	for _, fr := range stack {
		if n := len(runs); n > 0 && runs[n-1].fr.Pos == fr.Pos && runs[n-1].fr.Name == fr.Name {
			runs[n-1].n++
			continue
		}
		runs = append(runs, run{fr, 1})
	}
	const keep = 20
	for i, r := range runs {
		if len(runs) > 2*keep && i == keep {
			fmt.Fprintf(b, "  ... %d more frames ...\n", len(runs)-2*keep)
		}
		if len(runs) > 2*keep && i >= keep && i < len(runs)-keep {
			continue
		}
		fmt.Fprintf(b, "  %s: in %s\n", r.fr.Pos, r.fr.Name)
		if r.n > 1 {
			fmt.Fprintf(b, "  [the line above repeated %d more times]\n", r.n-1)
		}
	}
}
