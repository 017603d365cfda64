package ui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleet-deploy/fleet/runtime"
)

// Duration renders a step's or a run's duration the way every view
// does: tenths of a second below ten seconds, whole seconds above.
func Duration(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// Bytes renders a byte count in binary units.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// amount renders a progress quantity in its unit.
func amount(n int64, unit string) string {
	if unit == "bytes" {
		return Bytes(n)
	}
	if unit == "" {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// rate renders a throughput.
func rate(perSec float64, unit string) string {
	if unit == "bytes" {
		return Bytes(int64(perSec)) + "/s"
	}
	return fmt.Sprintf("%.1f %s/s", perSec, unit)
}

// progressText says how far a step has got: "12.0 MiB of 40.0 MiB
// (30%), 4.1 MiB/s".
func progressText(p *stepState) string {
	var b strings.Builder
	b.WriteString(amount(p.done, p.unit))
	if p.total > 0 {
		fmt.Fprintf(&b, " of %s (%d%%)", amount(p.total, p.unit), min(100, p.done*100/p.total))
	}
	if p.rate > 0 {
		fmt.Fprintf(&b, ", %s", rate(p.rate, p.unit))
	}
	return b.String()
}

// Done says what a successful step did, in colmena's words.
func Done(s *runtime.Step) string {
	switch s.Action {
	case "build":
		return "Built " + ShortPath(s.Closure)
	case "push":
		if r := s.Result; r != nil {
			if r.Missing == 0 {
				return fmt.Sprintf("Pushed system closure (all %d paths already there)", r.Paths)
			}
			return fmt.Sprintf("Pushed system closure (%d of %d paths, %s)", r.Missing, r.Paths, Bytes(r.Bytes))
		}
		return "Pushed system closure"
	case "activate":
		if s.Goal == "dry-activate" {
			return "Dry activation successful"
		}
		return fmt.Sprintf("Activation successful (%s)", s.Goal)
	case "rollback":
		if r := s.Result; r != nil && r.Current != "" {
			return "Rolled back to " + ShortPath(r.Current)
		}
		return "Rolled back"
	case "check":
		return "Healthy: " + s.Check
	case "run":
		return fmt.Sprintf("Ran %s", strings.Join(QuoteAll(s.Argv), " "))
	case "sleep":
		return fmt.Sprintf("Slept %gs", s.Seconds)
	case "reboot":
		if r := s.Result; r != nil && !r.Rebooted {
			return "No reboot needed (" + r.Reason + ")"
		}
		return "Rebooted, back up"
	case "upload-key":
		if s.Key != nil {
			return "Uploaded key " + s.Key.Dest
		}
		return "Uploaded key"
	}
	return string(s.Action)
}

// outcome is the short, grep-friendly result of a successful step for
// the plain view: "2 of 2 paths, 6.7 KiB".
func outcome(s *runtime.Step) string {
	r := s.Result
	switch s.Action {
	case "build":
		return s.Closure
	case "push":
		if r == nil {
			return ""
		}
		if r.Missing == 0 {
			return fmt.Sprintf("all %d paths already there", r.Paths)
		}
		return fmt.Sprintf("%d of %d paths, %s", r.Missing, r.Paths, Bytes(r.Bytes))
	case "activate", "rollback":
		if r == nil {
			return s.Goal
		}
		out := strings.TrimSpace(s.Goal + " " + generation(r.Previous, r.Current))
		if r.Warning != "" {
			out += " (" + r.Warning + ")"
		}
		return out
	case "run":
		if r != nil && r.ExitCode != 0 {
			return fmt.Sprintf("exit %d", r.ExitCode)
		}
		return ""
	case "check":
		return s.Check
	case "reboot":
		if r == nil {
			return ""
		}
		if !r.Rebooted {
			return "not needed: " + r.Reason
		}
		return "rebooted: " + r.Reason
	case "upload-key":
		if s.Key != nil {
			return s.Key.Dest
		}
	}
	return ""
}

// generation renders "before → after" with short store path names.
func generation(before, after string) string {
	return generationWith(ShortPath, before, after)
}

func generationWith(short func(string) string, before, after string) string {
	switch {
	case before == "" && after == "":
		return ""
	case before == after:
		return short(after) + " (unchanged)"
	case before == "":
		return "→ " + short(after)
	case after == "":
		return short(before) + " →"
	}
	return short(before) + " → " + short(after)
}

// systemLabel shortens the store path of host's system further than
// ShortPath for the summary table, where the host is named already:
// /nix/store/0123456...-nixos-system-envy-25.11 becomes 0123456…25.11.
func systemLabel(host string) func(string) string {
	return func(p string) string {
		s := ShortPath(p)
		if hash, name, ok := strings.Cut(s, "-"); ok && len(hash) == 7 {
			if rest, ok := strings.CutPrefix(name, "nixos-system-"+host+"-"); ok && rest != "" {
				return hash + "…" + rest
			}
		}
		return s
	}
}

// ShortPath shortens a store path to the first 7 characters of its
// hash and its name: /nix/store/0123456789abcdef...-nixos-system-envy
// becomes 0123456-nixos-system-envy. Other strings are returned as they
// are.
func ShortPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/nix/store/")
	if !ok {
		return p
	}
	hash, name, ok := strings.Cut(rest, "-")
	if !ok || len(hash) < 7 {
		return rest
	}
	return hash[:7] + "-" + name
}

// QuoteAll quotes the words of argv that a shell would not take as
// they are.
func QuoteAll(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
			out[i] = fmt.Sprintf("%q", a)
		} else {
			out[i] = a
		}
	}
	return out
}

// list joins names, or says "none".
func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// firstLine splits a message into its first line and the rest.
func firstLine(msg string) (string, []string) {
	lines := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	return lines[0], lines[1:]
}

// Width is the number of terminal cells s takes, ignoring ANSI escape
// sequences.
func Width(s string) int {
	w := 0
	for i := 0; i < len(s); {
		if n := escapeLen(s[i:]); n > 0 {
			i += n
			continue
		}
		r, size := decodeRune(s[i:])
		w += runeWidth(r)
		i += size
	}
	return w
}

// Truncate cuts s to at most w terminal cells, ending it with "…" when
// it was cut. Escape sequences are kept (they take no cells), and a
// colour in force at the cut is reset.
func Truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if Width(s) <= w {
		return s
	}
	var b strings.Builder
	used, escaped := 0, false
	for i := 0; i < len(s); {
		if n := escapeLen(s[i:]); n > 0 {
			b.WriteString(s[i : i+n])
			escaped = true
			i += n
			continue
		}
		r, size := decodeRune(s[i:])
		rw := runeWidth(r)
		if used+rw > w-1 {
			break
		}
		b.WriteString(s[i : i+size])
		used += rw
		i += size
	}
	b.WriteString("…")
	if escaped {
		b.WriteString(reset)
	}
	return b.String()
}

// escapeLen is the length of the ANSI CSI sequence s starts with, or 0.
func escapeLen(s string) int {
	if len(s) < 2 || s[0] != 0x1b || s[1] != '[' {
		return 0
	}
	for i := 2; i < len(s); i++ {
		if s[i] >= 0x40 && s[i] <= 0x7e {
			return i + 1
		}
	}
	return len(s)
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// runeWidth is the number of cells a rune takes in a terminal: 0 for
// controls and combining marks, 2 for East Asian wide characters and
// emoji, 1 otherwise.
func runeWidth(r rune) int {
	switch {
	case r < 0x20 || (r >= 0x7f && r < 0xa0):
		return 0
	case r >= 0x300 && r <= 0x36f, r == 0x200b, r == 0x200d, r >= 0xfe00 && r <= 0xfe0f:
		return 0
	}
	for _, rg := range wide {
		if r < rg[0] {
			break
		}
		if r <= rg[1] {
			return 2
		}
	}
	return 1
}

// wide lists, sorted, the ranges of double-width runes: CJK and the
// emoji with a default emoji presentation.
var wide = [][2]rune{
	{0x1100, 0x115f}, {0x231a, 0x231b}, {0x2329, 0x232a}, {0x23e9, 0x23ec}, {0x23f0, 0x23f0},
	{0x23f3, 0x23f3}, {0x25fd, 0x25fe}, {0x2614, 0x2615}, {0x2648, 0x2653}, {0x267f, 0x267f},
	{0x2693, 0x2693}, {0x26a1, 0x26a1}, {0x26aa, 0x26ab}, {0x26bd, 0x26be}, {0x26c4, 0x26c5},
	{0x26ce, 0x26ce}, {0x26d4, 0x26d4}, {0x26ea, 0x26ea}, {0x26f2, 0x26f3}, {0x26f5, 0x26f5},
	{0x26fa, 0x26fa}, {0x26fd, 0x26fd}, {0x2705, 0x2705}, {0x270a, 0x270b}, {0x2728, 0x2728},
	{0x274c, 0x274c}, {0x274e, 0x274e}, {0x2753, 0x2755}, {0x2757, 0x2757}, {0x2795, 0x2797},
	{0x27b0, 0x27b0}, {0x27bf, 0x27bf}, {0x2b1b, 0x2b1c}, {0x2b50, 0x2b50}, {0x2b55, 0x2b55},
	{0x2e80, 0x303e}, {0x3041, 0x33ff}, {0x3400, 0x4dbf}, {0x4e00, 0x9fff}, {0xa000, 0xa4cf},
	{0xa960, 0xa97f}, {0xac00, 0xd7a3}, {0xf900, 0xfaff}, {0xfe10, 0xfe19}, {0xfe30, 0xfe6f},
	{0xff00, 0xff60}, {0xffe0, 0xffe6}, {0x16fe0, 0x16fe4}, {0x17000, 0x18aff}, {0x1b000, 0x1b2ff},
	{0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf}, {0x1f18e, 0x1f18e}, {0x1f191, 0x1f19a}, {0x1f200, 0x1f251},
	{0x1f300, 0x1f64f}, {0x1f680, 0x1f6ff}, {0x1f7e0, 0x1f7eb}, {0x1f90c, 0x1f9ff}, {0x1fa70, 0x1faff},
	{0x20000, 0x3fffd},
}
