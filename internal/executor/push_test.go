package executor

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"testing"

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
