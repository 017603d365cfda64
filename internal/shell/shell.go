// Package shell builds POSIX sh command lines from argument vectors.
//
// An SSH "exec" request carries one string that the remote login shell
// parses (`$SHELL -c STRING`). Every remote command fleet runs is built with
// Join, so that each argv element arrives as exactly one word, byte for byte,
// whatever it contains.
package shell

import (
	"errors"
	"fmt"
	"strings"
)

// Quote returns s as one POSIX sh word. Words made only of
// [A-Za-z0-9_./:=@%+,-] are left bare so that logs stay readable (except a
// word starting with '=', which zsh would expand); everything else is put in
// single quotes, each single quote inside becoming quote, backslash, quote,
// quote. The empty string becomes a pair of single quotes:
//
//	Quote("nix-store")  // nix-store
//	Quote("it's")       // 'it'\''s'
//	Quote("")           // ''
//
// A NUL byte cannot be passed through a shell at all; Join reports it as an
// error, Quote does not check.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isBare(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			b.WriteString(`'\''`)
		} else {
			b.WriteByte(s[i])
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// isBare reports whether s can stand unquoted as an argument word.
func isBare(s string) bool {
	if s == "" || s[0] == '=' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("_./:=@%+,-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// reserved are words a shell treats specially in command position (POSIX
// reserved words plus those of bash and zsh); a command name equal to one of
// them must be quoted to be run as a command.
var reserved = map[string]bool{
	"!": true, "{": true, "}": true, "case": true, "do": true, "done": true,
	"elif": true, "else": true, "esac": true, "fi": true, "for": true,
	"if": true, "in": true, "then": true, "until": true, "while": true,
	"function": true, "select": true, "time": true, "coproc": true,
	"[[": true, "]]": true, "repeat": true, "foreach": true, "end": true,
	"nocorrect": true, "noglob": true,
}

// ErrEmpty is returned by Join for an empty argv.
var ErrEmpty = errors.New("shell: empty command")

// Join quotes every argv element and joins them with spaces, giving a
// command line that a POSIX shell splits back into exactly argv.
//
// The first element is quoted even when it would otherwise stay bare if it
// contains '=' (it would be taken as a variable assignment) or is a reserved
// word such as "if" or "!".
//
// It fails for an empty argv and for any element containing a NUL byte,
// which no shell can pass through.
func Join(argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", ErrEmpty
	}
	var b strings.Builder
	for i, a := range argv {
		if j := strings.IndexByte(a, 0); j >= 0 {
			return "", fmt.Errorf("shell: argument %d (%q) contains a NUL byte at offset %d", i, a, j)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && (reserved[a] || strings.IndexByte(a, '=') >= 0) {
			b.WriteString(quoteAlways(a))
		} else {
			b.WriteString(Quote(a))
		}
	}
	return b.String(), nil
}

func quoteAlways(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
