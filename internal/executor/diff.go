package executor

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
)

// Diff is what deploying a closure would change on a host: the packages
// (store path names, split into name and version) added, removed and
// changed between the closure the host runs and the new one, and the
// size of the store paths that come and go (fleet diff, docs/diff.md).
type Diff struct {
	Host string `json:"host"`
	// Current is the host's /run/current-system, "" if it has none.
	Current string `json:"current"`
	Closure string `json:"closure"`
	// Changes is false when the host runs Closure already.
	Changes bool      `json:"changes"`
	Added   []Package `json:"added"`
	Removed []Package `json:"removed"`
	Changed []Change  `json:"changed"`
	// Rebuilt are the names whose versions stay but whose store paths
	// differ (unversioned paths, such as etc, mostly).
	Rebuilt      []string `json:"rebuilt"`
	PathsAdded   int      `json:"paths_added"`
	PathsRemoved int      `json:"paths_removed"`
	BytesAdded   int64    `json:"bytes_added"`
	BytesRemoved int64    `json:"bytes_removed"`
	// SizeDelta is BytesAdded - BytesRemoved: how the closure grows.
	SizeDelta int64 `json:"size_delta"`
}

// Package is one name of a closure's store paths and its versions: all
// the paths of that name, grouped ("" is no version).
type Package struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
	Paths    int      `json:"paths"`
}

// Change is a name whose versions differ.
type Change struct {
	Name string   `json:"name"`
	Old  []string `json:"old"`
	New  []string `json:"new"`
}

// diffScript prints the host's current system and, when it is not $1,
// its closure; one store path a line.
const diffScript = `cur=$(readlink /run/current-system) || cur=
printf '%s\n' "$cur"
if [ -n "$cur" ] && [ "$cur" != "$1" ]; then nix-store --query --requisites "$cur"; fi`

// Diff compares closure, built here, with what h runs: the new closure's
// paths and sizes from the local store; the host's closure, and the
// sizes of the paths that would go, over h's one connection.
func (e *Executor) Diff(ctx context.Context, h *runtime.Host, closure string) (*Diff, error) {
	m, err := e.machine(h)
	if err != nil {
		return nil, err
	}
	out, err := m.run(ctx, asUser, nil, "sh", "-c", diffScript, "sh", closure)
	if err != nil {
		return nil, fmt.Errorf("reading the current system: %w", err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	d := &Diff{Host: h.Name, Current: strings.TrimSpace(lines[0]), Closure: closure}
	if d.Current == closure {
		return d.finish(), nil
	}
	d.Changes = true
	var old []string
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" {
			old = append(old, l)
		}
	}
	infos, err := e.paths.of(ctx, closure) // the metadata the push uses too
	if err != nil {
		return nil, err
	}
	paths, size := make([]string, len(infos)), make(map[string]int64, len(infos))
	for i, p := range infos {
		paths[i], size[p.Path] = p.Path, p.NarSize
	}
	added, removed := setDiff(paths, old), setDiff(old, paths)
	d.PathsAdded, d.PathsRemoved = len(added), len(removed)
	for _, p := range added {
		d.BytesAdded += size[p]
	}
	if len(removed) > 0 {
		out, err := m.run(ctx, asUser, strings.NewReader(strings.Join(removed, "\n")+"\n"), "xargs", "nix-store", "--query", "--size")
		if err != nil {
			return nil, fmt.Errorf("sizing the paths that go: %w", err)
		}
		if d.BytesRemoved, err = sum(out, nil); err != nil {
			return nil, err
		}
	}
	d.SizeDelta = d.BytesAdded - d.BytesRemoved
	d.Added, d.Removed, d.Changed, d.Rebuilt = comparePackages(packages(old), packages(paths), names(added), names(removed))
	return d.finish(), nil
}

// finish makes the lists of d non-nil: JSON arrays, never null.
func (d *Diff) finish() *Diff {
	for _, l := range []*[]Package{&d.Added, &d.Removed} {
		if *l == nil {
			*l = []Package{}
		}
	}
	if d.Changed == nil {
		d.Changed = []Change{}
	}
	if d.Rebuilt == nil {
		d.Rebuilt = []string{}
	}
	return d
}

// setDiff is the paths of a not in b, in a's order.
func setDiff(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, p := range b {
		in[p] = true
	}
	var out []string
	for _, p := range a {
		if !in[p] {
			out = append(out, p)
		}
	}
	return out
}

// sum adds up the numbers of out, one a line.
func sum(out string, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	var n int64
	for _, f := range strings.Fields(out) {
		x, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("nix-store --query --size printed %q", f)
		}
		n += x
	}
	return n, nil
}

// ParseName splits a store path's name into name and version as Nix's
// builtins.parseDrvName does: the version starts after the first dash
// followed by a character that is not a letter ("hello-2.12" is hello
// 2.12, "etc-a" has no version).
func ParseName(s string) (name, version string) {
	for i := 0; i+1 < len(s); i++ {
		if c := s[i+1]; s[i] == '-' && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// storeName is a store path's name: its base without the hash.
func storeName(p string) string {
	base := path.Base(p)
	if len(base) > 33 && base[32] == '-' {
		return base[33:]
	}
	return base
}

// names is the set of the names (without versions) of paths.
func names(paths []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range paths {
		n, _ := ParseName(storeName(p))
		out[n] = true
	}
	return out
}

// packages groups paths by name: the name's versions and its number of
// paths.
func packages(paths []string) map[string]*Package {
	out := map[string]*Package{}
	for _, p := range paths {
		n, v := ParseName(storeName(p))
		pk := out[n]
		if pk == nil {
			pk = &Package{Name: n}
			out[n] = pk
		}
		pk.Paths++
		if !slices.Contains(pk.Versions, v) {
			pk.Versions = append(pk.Versions, v)
		}
	}
	for _, pk := range out {
		slices.Sort(pk.Versions)
	}
	return out
}

// comparePackages says which names come, go, change version, or stay
// at their versions while some of their paths change (touched: the
// names of the paths added or removed). Each list is sorted by name.
func comparePackages(old, new map[string]*Package, touchedNew, touchedOld map[string]bool) (added, removed []Package, changed []Change, rebuilt []string) {
	for n, pk := range new {
		o, ok := old[n]
		switch {
		case !ok:
			added = append(added, *pk)
		case !slices.Equal(o.Versions, pk.Versions):
			changed = append(changed, Change{Name: n, Old: o.Versions, New: pk.Versions})
		case touchedNew[n] || touchedOld[n]:
			rebuilt = append(rebuilt, n)
		}
	}
	for n, pk := range old {
		if _, ok := new[n]; !ok {
			removed = append(removed, *pk)
		}
	}
	byName := func(a, b Package) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(added, byName)
	slices.SortFunc(removed, byName)
	slices.SortFunc(changed, func(a, b Change) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(rebuilt)
	return added, removed, changed, rebuilt
}

// DiffLines renders d as fleet diff prints it: a headline, then one line
// per package added (+), removed (-) or changed (~), and the names
// rebuilt.
func DiffLines(d *Diff, bytes func(int64) string) []string {
	if !d.Changes {
		return []string{d.Host + ": no change"}
	}
	sign := "+"
	if d.SizeDelta < 0 {
		sign = "-"
	}
	size := fmt.Sprintf("%s%s (%d paths added, %s; %d removed, %s)", sign, bytes(abs(d.SizeDelta)),
		d.PathsAdded, bytes(d.BytesAdded), d.PathsRemoved, bytes(d.BytesRemoved))
	head := fmt.Sprintf("%s: %d added, %d removed, %d changed; %s", d.Host, len(d.Added), len(d.Removed), len(d.Changed), size)
	if d.Current == "" {
		head = fmt.Sprintf("%s: never deployed; %d packages, %s", d.Host, len(d.Added), size)
	}
	lines := []string{head}
	if d.Current == "" {
		return lines
	}
	for _, p := range d.Added {
		lines = append(lines, "  + "+pkgLine(p))
	}
	for _, p := range d.Removed {
		lines = append(lines, "  - "+pkgLine(p))
	}
	for _, c := range d.Changed {
		lines = append(lines, fmt.Sprintf("  ~ %s %s -> %s", c.Name, versions(c.Old), versions(c.New)))
	}
	if len(d.Rebuilt) > 0 {
		lines = append(lines, "  rebuilt: "+strings.Join(d.Rebuilt, ", "))
	}
	return lines
}

func pkgLine(p Package) string {
	s := p.Name
	if !slices.Equal(p.Versions, []string{""}) {
		s += " " + versions(p.Versions)
	}
	if p.Paths > 1 {
		s += fmt.Sprintf(" (%d paths)", p.Paths)
	}
	return s
}

// versions renders a name's versions: "2.12", "1.0, 2.0", "(no
// version)".
func versions(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = cmp.Or(v, "(no version)")
	}
	return strings.Join(out, ", ")
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
