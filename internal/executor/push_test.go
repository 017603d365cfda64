package executor

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/nixserve"
	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// TestPushBuiltOnTarget: a system built on its host is not copied, only
// looked for in the host's store.
func TestPushBuiltOnTarget(t *testing.T) {
	h := &runtime.Host{Name: "web", TargetHost: "web", BuildOnTarget: true}
	tests := []opCase{
		{name: "there", gens: twoGens, want: state{sys2, 2, twoGens}},
		{name: "missing", gens: oneGen, want: state{sys1, 1, oneGen}, err: "web: push failed: " + sys2 + " is not in the host's store"},
		{name: "unreachable", gens: oneGen, want: state{sys1, 1, oneGen}, err: "web: push failed: fake: ssh connection lost",
			fault: func(f *fakeHost, _ context.CancelFunc) { f.down = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, _, ctx := tt.setup(t)
			res, err := e.Push(ctx, h, sys2, nil)
			tt.check(t, f, err)
			if want := (&runtime.PushResult{Paths: 1}); !reflect.DeepEqual(res, want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
			if got := commands(f); len(got) > 1 {
				t.Errorf("commands %q, want one look-up", got)
			}
		})
	}
}

// push is the fake machine's pushScript: what it runs when it has the
// closure, else its `nix-store --serve --write`.
func (f *fakeHost) push(cmd remote.Cmd) error {
	closure, prof := cmd.Argv[4], f.gens[f.gen]
	if closure == "-" { // the first line of stdin, read a byte at a time as sh does
		var line []byte
		b := make([]byte, 1)
		for {
			if _, err := cmd.Stdin.Read(b); err != nil {
				return nil // no line: the run ended first
			}
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		closure = string(line)
	}
	if f.current == closure || prof == closure {
		link := ""
		if f.gen != 0 {
			link = fmt.Sprintf("system-%d-link", f.gen)
		}
		fmt.Fprintf(cmd.Stdout, "fleet-has\t%s\t%s\t%s\t%s\t%s\n", f.current, prof, link, f.boot, f.ok)
		return nil // without reading the rest of stdin, as the script: fleet's writes may then fail
	}
	io.WriteString(cmd.Stdout, "fleet-serve\n")
	return f.serve(cmd)
}

// serve is the fake machine's `nix-store --serve --write`: the handshake
// and cmdQueryValidPaths against the paths it has, until its stdin ends.
// (internal/nixserve's tests run the real one.)
func (f *fakeHost) serve(cmd remote.Cmd) error {
	in, out := cmd.Stdin, cmd.Stdout
	num := func() (uint64, error) {
		var b [8]byte
		_, err := io.ReadFull(in, b[:])
		return binary.LittleEndian.Uint64(b[:]), err
	}
	put := func(ns ...uint64) {
		for _, n := range ns {
			binary.Write(out, binary.LittleEndian, n)
		}
	}
	str := func() (string, error) {
		n, err := num()
		if err != nil {
			return "", err
		}
		b := make([]byte, (n+7)&^7)
		_, err = io.ReadFull(in, b)
		return string(b[:n]), err
	}
	if magic, err := num(); err != nil || magic != 0x390c9deb {
		return &remote.ExitError{Host: "fake", Command: "nix-store --serve --write", Code: 1, Stderr: "error: protocol mismatch"}
	}
	put(0x5452eecb, 2<<8|7)
	num() // the client's version
	for {
		c, err := num()
		if err == io.EOF {
			return nil
		}
		if c != 1 {
			f.t.Errorf("fake host: serve command %d", c)
			return &remote.ExitError{Host: "fake", Command: "nix-store --serve --write", Code: 1, Stderr: fmt.Sprintf("error: unknown serve command %d", c)}
		}
		num() // lock
		num() // substitute
		n, _ := num()
		var valid []string
		for range n {
			p, _ := str()
			if f.store[p] || slices.Contains(slices.Collect(maps.Values(f.gens)), p) {
				valid = append(valid, p)
			}
		}
		put(uint64(len(valid)))
		for _, p := range valid {
			put(uint64(len(p)))
			out.Write(append([]byte(p), make([]byte, (8-len(p)%8)%8)...))
		}
	}
}

// TestPushThenUnchanged: a push to a host that has the closure starts no
// nix-store there, and the activation right after it answers from what
// the push saw, without a session, when the session would have found the
// host unchanged; in every other case the activation's session decides.
func TestPushThenUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ok         string // /run/fleet/ok
		goal       string
		reactivate bool
		between    bool // another operation on the host between push and activate
		closure    string
		want       []string // the commands after the push's
	}{
		{name: "switch", ok: sys2, goal: "switch", closure: sys2},
		{name: "test", ok: sys2, goal: "test", closure: sys2},
		{name: "boot", goal: "boot", closure: sys2},
		{name: "last switch not a success", goal: "switch", closure: sys2, want: []string{"fleet-activate"}},
		{name: "reactivate", ok: sys2, goal: "switch", reactivate: true, closure: sys2, want: []string{"fleet-activate"}},
		{name: "an operation between", ok: sys2, goal: "switch", between: true, closure: sys2, want: []string{"readlink /run/current-system", "fleet-activate"}},
		{name: "the previous system", ok: sys2, goal: "switch", closure: sys1, want: []string{"fleet-activate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := opCase{gens: twoGens, want: state{sys2, 2, twoGens}}
			if tc.closure == sys1 {
				op.want = state{sys1, 3, with(twoGens, 3, sys1)}
			}
			f, e, _, ctx := op.setup(t)
			f.ok = tc.ok
			e.opts.Reactivate = tc.reactivate
			m, err := e.machine(testH)
			if err != nil {
				t.Fatal(err)
			}
			res, err := m.copy(ctx, 1, tc.closure, given(&nixserve.PathInfo{Path: tc.closure}), nil)
			if err != nil || res.Missing != 0 {
				t.Fatalf("push: %+v, %v; want nothing missing", res, err)
			}
			pushed := len(commands(f))
			if tc.between {
				m, err := e.machine(testH)
				if err != nil {
					t.Fatal(err)
				}
				m.readlink(ctx, currentSystem)
			}
			ares, err := e.Activate(ctx, testH, tc.closure, runtime.ActivateOptions{Goal: tc.goal})
			op.check(t, f, err)
			if tc.closure == sys2 && (ares == nil || ares.Previous != sys2 || ares.Current != sys2) {
				t.Errorf("result %+v, want %s before and after", ares, sys2)
			}
			if got := scriptNames(commands(f)[pushed:]); !slices.Equal(got, tc.want) {
				t.Errorf("commands after the push %q, want %q", got, tc.want)
			}
			if got := f.log[0]; !strings.HasSuffix(got, "fleet-push "+tc.closure+" nix-store --serve --write") {
				t.Errorf("push command %q", got)
			}
		})
	}
}

// scriptNames are commands (activate_test.go's commands) with each script
// named by its $0 alone.
func scriptNames(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		if s, ok := strings.CutPrefix(c, "sh -c "); ok {
			c, _, _ = strings.Cut(s, " ")
		}
		out = append(out, c)
	}
	return out
}

// TestServeAhead: a push started before its closure was known is the one
// the push then uses (one command on the host, its closure sent on
// stdin), for a host that lacks the closure and for one that has it; one
// no push took ends with the Executor, having done nothing.
func TestServeAhead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		closure string // "" for no push
		missing int
	}{
		{"not running it", sys3, 0}, // in its store (fake serve adds nothing), not its system
		{"running it", sys2, 0},
		{"no push", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := opCase{gens: twoGens, want: state{sys2, 2, twoGens}}
			f, e, _, ctx := op.setup(t)
			m, err := e.machine(testH)
			if err != nil {
				t.Fatal(err)
			}
			f.store = map[string]bool{sys3 + "-dep": true, sys3: true}
			m.allowAhead()
			m.serveAhead()
			if tc.closure != "" {
				res, err := m.copy(ctx, 1, tc.closure, given(&nixserve.PathInfo{Path: sys3 + "-dep"}, &nixserve.PathInfo{Path: tc.closure}), nil)
				if err != nil || res.Missing != tc.missing {
					t.Fatalf("push: %+v, %v; want %d missing", res, err, tc.missing)
				}
				if got, want := m.seen != nil, tc.closure == sys2; got != want {
					t.Errorf("the push saw the host run the closure: %v, want %v", got, want)
				}
			}
			e.Close()
			if got := f.log; len(got) != 1 || !strings.HasSuffix(got[0], "fleet-push - nix-store --serve --write") {
				t.Errorf("commands %q, want the one push started ahead", got)
			}
			op.check(t, f, nil)
		})
	}
}

// TestServeAheadEndedByAnotherOperation: any other operation on the host
// ends a push started ahead before it runs (that session may be one of
// the few the host allows); the push then starts its own.
func TestServeAheadEndedByAnotherOperation(t *testing.T) {
	op := opCase{gens: twoGens, want: state{sys2, 2, twoGens}}
	f, e, _, ctx := op.setup(t)
	m, err := e.machine(testH)
	if err != nil {
		t.Fatal(err)
	}
	m.allowAhead()
	m.serveAhead()
	if _, err := e.Run(ctx, testH, []string{"readlink", currentSystem}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.copy(ctx, 3, sys2, given(&nixserve.PathInfo{Path: sys2}), nil); err != nil {
		t.Fatal(err)
	}
	var pushes []string
	for _, l := range f.log {
		if i := strings.Index(l, "fleet-push "); i >= 0 {
			pushes = append(pushes, strings.Fields(l[i:])[1])
		}
	}
	if want := []string{"-", sys2}; !slices.Equal(pushes, want) {
		t.Errorf("pushes with closures %q, want %q", pushes, want)
	}
	op.check(t, f, nil)
}

// given is copy's metadata of paths, known already.
func given(paths ...*nixserve.PathInfo) func() ([]*nixserve.PathInfo, error) {
	return func() ([]*nixserve.PathInfo, error) { return paths, nil }
}
