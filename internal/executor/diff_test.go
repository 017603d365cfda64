package executor

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestParseName: the split of builtins.parseDrvName.
func TestParseName(t *testing.T) {
	for _, tc := range []struct{ in, name, version string }{
		{"hello-2.12", "hello", "2.12"},
		{"nixos-system-web1-25.11.20250101.abcdef", "nixos-system-web1", "25.11.20250101.abcdef"},
		{"etc-a", "etc-a", ""},
		{"fleet-payload-a-p0", "fleet-payload-a-p0", ""},
		{"openssl-3.0.13-bin", "openssl", "3.0.13-bin"},
		{"source", "source", ""},
		{"a-", "a-", ""},
		{"python3.11-requests-2.31.0", "python3.11-requests", "2.31.0"},
		{"unit-script-x-_start", "unit-script-x", "_start"},
	} {
		if n, v := ParseName(tc.in); n != tc.name || v != tc.version {
			t.Errorf("ParseName(%q) = %q, %q; want %q, %q", tc.in, n, v, tc.name, tc.version)
		}
	}
}

func sp(i int, name string) string { return fmt.Sprintf("/nix/store/%032d-%s", i, name) }

// TestComparePackages: names added, removed, changed in version, and
// rebuilt at the same version; unversioned paths grouped by name.
func TestComparePackages(t *testing.T) {
	old := []string{sp(1, "hello-2.12"), sp(2, "etc-a"), sp(3, "gone-1.0"), sp(4, "tool-1.0"), sp(5, "source"), sp(6, "source"), sp(7, "same-3")}
	new := []string{sp(1, "hello-2.12"), sp(12, "etc-a"), sp(4, "tool-1.0"), sp(14, "tool-2.0"), sp(15, "source"), sp(7, "same-3"), sp(16, "extra"), sp(17, "extra"), sp(18, "fresh-0.1")}
	added, removed, changed, rebuilt := comparePackages(packages(old), packages(new), names(setDiff(new, old)), names(setDiff(old, new)))
	if want := []Package{{"extra", []string{""}, 2}, {"fresh", []string{"0.1"}, 1}}; !reflect.DeepEqual(added, want) {
		t.Errorf("added %v, want %v", added, want)
	}
	if want := []Package{{"gone", []string{"1.0"}, 1}}; !reflect.DeepEqual(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if want := []Change{{"tool", []string{"1.0"}, []string{"1.0", "2.0"}}}; !reflect.DeepEqual(changed, want) {
		t.Errorf("changed %v, want %v", changed, want)
	}
	if want := []string{"etc-a", "source"}; !reflect.DeepEqual(rebuilt, want) {
		t.Errorf("rebuilt %v, want %v", rebuilt, want)
	}
	d := (&Diff{Host: "a", Current: sp(20, "nixos-system-a-1"), Changes: true, Added: added, Removed: removed, Changed: changed, Rebuilt: rebuilt,
		PathsAdded: 5, PathsRemoved: 1, BytesAdded: 3000, BytesRemoved: 1000, SizeDelta: 2000}).finish()
	got := strings.Join(DiffLines(d, func(n int64) string { return fmt.Sprintf("%dB", n) }), "\n")
	want := `a: 2 added, 1 removed, 1 changed; +2000B (5 paths added, 3000B; 1 removed, 1000B)
  + extra (2 paths)
  + fresh 0.1
  - gone 1.0
  ~ tool 1.0 -> 1.0, 2.0
  rebuilt: etc-a, source`
	if got != want {
		t.Errorf("lines:\n%s\nwant:\n%s", got, want)
	}
	if got := DiffLines(&Diff{Host: "b"}, nil); !reflect.DeepEqual(got, []string{"b: no change"}) {
		t.Errorf("unchanged: %v", got)
	}
}

// TestDiffLinesNeverDeployed: a host without a system gets a headline,
// not its whole closure line by line.
func TestDiffLinesNeverDeployed(t *testing.T) {
	d := (&Diff{Host: "c", Changes: true, Added: []Package{{"hello", []string{"2.12"}, 1}, {"etc-c", []string{""}, 1}}, PathsAdded: 3, BytesAdded: 4096, SizeDelta: 4096}).finish()
	got := DiffLines(d, func(n int64) string { return fmt.Sprintf("%dB", n) })
	if want := []string{"c: never deployed; 2 packages, +4096B (3 paths added, 4096B; 0 removed, 0B)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
