package runtime

import (
	"fmt"
	"path"
	"strings"
)

// Selection is the outcome of --on: the hosts a run deploys, in
// inventory order, and why each other host is left alone.
type Selection struct {
	Selected   []*Host
	Skipped    []Skip
	Deployable int // deployable hosts in the inventory
	Selector   string
}

// Skip names a host that a run leaves alone, and why.
type Skip struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// Unreachable begins the Reason of a selected host that fleet run
// --skip-unreachable left out because it did not answer SSH.
const Unreachable = "unreachable"

// Select applies a selector to the inventory. A selector is a comma
// separated list of terms, OR-ed: a host name, a glob such as "rpi*", or
// "@tag". An empty selector selects every host. A term that matches no
// host is an error, so a typo never silently deploys nothing.
func Select(hosts []*Host, selector string) (*Selection, error) {
	matched, err := Match(hosts, selector)
	if err != nil {
		return nil, err
	}
	sel := &Selection{Selector: selector}
	for i, h := range hosts {
		if h.Deployable() {
			sel.Deployable++
		}
		switch {
		case !h.Deployable():
			sel.Skipped = append(sel.Skipped, Skip{h.Name, "no target_host"})
		case !matched[i]:
			sel.Skipped = append(sel.Skipped, Skip{h.Name, "not selected"})
		default:
			sel.Selected = append(sel.Selected, h)
		}
	}
	return sel, nil
}

// Match reports which hosts a selector matches, deployable or not. An
// empty selector matches every host.
func Match(hosts []*Host, selector string) ([]bool, error) {
	terms, err := ParseSelector(selector)
	if err != nil {
		return nil, err
	}
	matched := make([]bool, len(hosts))
	for i := range matched {
		matched[i] = len(terms) == 0
	}
	for _, t := range terms {
		n := 0
		for i, h := range hosts {
			if t.match(h) {
				matched[i] = true
				n++
			}
		}
		if n == 0 {
			return nil, &UsageError{Msg: fmt.Sprintf("--on: %s matches no host%s", t, t.hint(hosts))}
		}
	}
	return matched, nil
}

type term struct {
	tag  string // "@tag"
	glob string // name or glob
}

func (t term) String() string {
	if t.tag != "" {
		return fmt.Sprintf("tag %q", "@"+t.tag)
	}
	return fmt.Sprintf("%q", t.glob)
}

func (t term) match(h *Host) bool {
	if t.tag != "" {
		return h.HasTag(t.tag)
	}
	ok, _ := path.Match(t.glob, h.Name)
	return ok
}

func (t term) hint(hosts []*Host) string {
	var names []string
	if t.tag != "" {
		seen := map[string]bool{}
		for _, h := range hosts {
			for _, tag := range h.Tags {
				if !seen[tag] {
					seen[tag] = true
					names = append(names, tag)
				}
			}
		}
		if n := nearest(t.tag, names); n != "" {
			return fmt.Sprintf(" (did you mean @%s?)", n)
		}
		return ""
	}
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	if n := nearest(t.glob, names); n != "" {
		return fmt.Sprintf(" (did you mean %s?)", n)
	}
	return ""
}

// ParseSelector splits a selector into terms and validates each.
func ParseSelector(s string) ([]term, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var terms []term
	for _, raw := range strings.Split(s, ",") {
		w := strings.TrimSpace(raw)
		if w == "" {
			return nil, &UsageError{Msg: fmt.Sprintf("--on %q: empty term", s)}
		}
		if strings.HasPrefix(w, "@") {
			if !validName(w[1:]) {
				return nil, &UsageError{Msg: fmt.Sprintf("--on: invalid tag %q (tags use letters, digits, '.', '_' and '-')", w)}
			}
			terms = append(terms, term{tag: w[1:]})
			continue
		}
		if _, err := path.Match(w, ""); err != nil {
			return nil, &UsageError{Msg: fmt.Sprintf("--on: invalid pattern %q: %v", w, err)}
		}
		for _, r := range w {
			if !(isNameRune(r) || strings.ContainsRune("*?[]^!", r)) {
				return nil, &UsageError{Msg: fmt.Sprintf("--on: invalid character %q in %q", r, w)}
			}
		}
		terms = append(terms, term{glob: w})
	}
	return terms, nil
}

func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

func validName(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '-' || s[0] == '.' {
		return false
	}
	for _, r := range s {
		if !isNameRune(r) {
			return false
		}
	}
	return true
}

// ValidName reports whether s is a valid host name or tag: letters,
// digits, '.', '_' and '-', not starting with '-' or '.'. These names
// reach file names, logs and remote commands, so they are kept plain.
func ValidName(s string) bool { return validName(s) }

// nearest returns the candidate closest to x within a small edit
// distance, for "did you mean" hints.
func nearest(x string, candidates []string) string {
	best, bestD := "", len(x)/2+2
	for _, c := range candidates {
		if d := editDistance(x, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Nearest is nearest for other packages' hints.
func Nearest(x string, candidates []string) string { return nearest(x, candidates) }

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
