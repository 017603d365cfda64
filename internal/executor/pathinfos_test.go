package executor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fakeStore is a local store's metadata behind pathInfos.nixStore: it
// answers --query --requisites and --dump-db as nix-store does, and
// counts the processes.
type fakeStore struct {
	refs  map[string][]string // by path
	calls []string            // "requisites N" / "dump-db N": the paths each asked about
}

func fakePath(name string) string {
	return "/nix/store/" + strings.Repeat(name[:1], 32) + "-" + name
}

func newFakeStore(graph map[string][]string) *fakeStore {
	s := &fakeStore{refs: map[string][]string{}}
	for p, refs := range graph {
		for _, r := range refs {
			s.refs[fakePath(p)] = append(s.refs[fakePath(p)], fakePath(r))
		}
		if s.refs[fakePath(p)] == nil {
			s.refs[fakePath(p)] = []string{}
		}
	}
	return s
}

func (s *fakeStore) run(_ context.Context, args []string) ([]byte, error) {
	var out strings.Builder
	switch {
	case args[0] == "--query" && args[1] == "--requisites":
		s.calls = append(s.calls, fmt.Sprintf("requisites %d", len(args)-2))
		seen := map[string]bool{}
		var visit func(string)
		visit = func(p string) {
			if !seen[p] {
				seen[p] = true
				for _, r := range s.refs[p] {
					visit(r)
				}
				fmt.Fprintln(&out, p)
			}
		}
		for _, root := range args[2:] {
			if s.refs[root] == nil {
				return nil, fmt.Errorf("nix-store --query: error: path '%s' is not valid", root)
			}
			visit(root)
		}
	case args[0] == "--dump-db":
		s.calls = append(s.calls, fmt.Sprintf("dump-db %d", len(args)-1))
		for _, p := range args[1:] {
			fmt.Fprintf(&out, "%s\n%s\n%d\n\n%d\n", p, strings.Repeat("ab", 32), 1000+len(p), len(s.refs[p]))
			for _, r := range s.refs[p] {
				fmt.Fprintln(&out, r)
			}
		}
	default:
		return nil, fmt.Errorf("unexpected nix-store %q", args)
	}
	return []byte(out.String()), nil
}

func closureOf(t *testing.T, c *pathInfos, root string) []string {
	t.Helper()
	infos, err := c.of(context.Background(), fakePath(root))
	if err != nil {
		t.Fatalf("closure of %s: %v", root, err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, strings.SplitN(i.Path, "-", 2)[1])
	}
	return out
}

// TestPathInfosOneQuery: the closures Build announced are asked of the
// local store in one query (two processes) for all hosts, each comes
// dependencies first, and one nobody announced costs a query of its own.
func TestPathInfosOneQuery(t *testing.T) {
	s := newFakeStore(map[string][]string{
		"a-sys": {"libc", "a-etc", "a-sys"}, "a-etc": {"libc"},
		"b-sys": {"libc", "b-etc"}, "b-etc": {"libc"},
		"libc": nil, "c-sys": {"libc"},
	})
	c := &pathInfos{nixStore: s.run}
	c.want(fakePath("a-sys"), fakePath("b-sys"))
	if got, want := closureOf(t, c, "a-sys"), []string{"libc", "a-etc", "a-sys"}; !slices.Equal(got, want) {
		t.Errorf("a-sys: %q, want %q", got, want)
	}
	if got, want := closureOf(t, c, "b-sys"), []string{"libc", "b-etc", "b-sys"}; !slices.Equal(got, want) {
		t.Errorf("b-sys: %q, want %q", got, want)
	}
	if want := []string{"requisites 2", "dump-db 5"}; !slices.Equal(s.calls, want) {
		t.Errorf("nix-store runs %q, want %q", s.calls, want)
	}
	s.calls = nil
	closureOf(t, c, "c-sys")
	if want := []string{"requisites 1", "dump-db 1"}; !slices.Equal(s.calls, want) {
		t.Errorf("unannounced closure: nix-store runs %q, want %q (only its new path)", s.calls, want)
	}
	infos, _ := c.of(context.Background(), fakePath("c-sys"))
	if i := infos[1]; i.NarHash != strings.Repeat("ab", 32) || i.NarSize != int64(1000+len(i.Path)) || !slices.Equal(i.References, []string{fakePath("libc")}) {
		t.Errorf("c-sys's info: %+v", i)
	}
}

// TestPathInfosBadRoot: an announced closure the local store lacks fails
// only its own push.
func TestPathInfosBadRoot(t *testing.T) {
	s := newFakeStore(map[string][]string{"a-sys": {"libc"}, "libc": nil})
	c := &pathInfos{nixStore: s.run}
	c.want(fakePath("gone"), fakePath("a-sys"))
	if got := closureOf(t, c, "a-sys"); !slices.Equal(got, []string{"libc", "a-sys"}) {
		t.Errorf("a-sys: %q", got)
	}
	if _, err := c.of(context.Background(), fakePath("gone")); err == nil || !strings.Contains(err.Error(), "is not valid") {
		t.Errorf("gone: %v", err)
	}
}

// TestPathInfosChunks: a query of many paths splits --dump-db's command
// line.
func TestPathInfosChunks(t *testing.T) {
	graph := map[string][]string{"root": nil}
	for i := range 6000 {
		dep := fmt.Sprintf("dep-%d-%s", i, strings.Repeat("x", 40))
		graph["root"] = append(graph["root"], dep)
		graph[dep] = nil
	}
	s := newFakeStore(graph)
	c := &pathInfos{nixStore: s.run}
	if got := len(closureOf(t, c, "root")); got != 6001 {
		t.Errorf("%d paths, want 6001", got)
	}
	dumped := 0
	for _, call := range s.calls[1:] {
		var n int
		fmt.Sscanf(call, "dump-db %d", &n)
		dumped += n
	}
	if len(s.calls) < 3 || s.calls[0] != "requisites 1" || dumped != 6001 {
		t.Errorf("nix-store runs %q, want requisites and --dump-db in chunks", s.calls)
	}
}

func TestParseRegistrationsRefuses(t *testing.T) {
	for _, out := range []string{
		"not a path\nx\n1\n\n0\n",
		fakePath("a") + "\nshort\n1\n\n0\n",
		fakePath("a") + "\n" + strings.Repeat("0", 64) + "\nbig\n\n0\n",
		fakePath("a") + "\n" + strings.Repeat("0", 64) + "\n1\n\n2\n" + fakePath("b") + "\n",
	} {
		if infos, err := parseRegistrations([]byte(out)); err == nil {
			t.Errorf("%q: %+v, want an error", out, infos)
		}
	}
}
