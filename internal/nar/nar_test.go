package nar

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nixconf"
)

func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }

// TestDumpMatchesNix compares Dump with `nix-store --dump` on trees of
// every kind of node: the bytes must be the same.
func TestDumpMatchesNix(t *testing.T) {
	labtest.RequireNix(t)
	tree := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "tree")
		os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755)
		os.WriteFile(filepath.Join(dir, "a"), []byte("seven b"), 0o644)
		os.WriteFile(filepath.Join(dir, "B"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\necho hi\n"), 0o755)
		os.WriteFile(filepath.Join(dir, "sub", "eight..."), []byte("12345678"), 0o444)
		os.WriteFile(filepath.Join(dir, "sub", "deeper", "big"), bytes.Repeat([]byte("x"), 200<<10+3), 0o644)
		os.Symlink("../a", filepath.Join(dir, "sub", "link"))
		os.Symlink("dangling/target", filepath.Join(dir, "dangling"))
		os.Mkdir(filepath.Join(dir, "empty"), 0o755)
		return dir
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T) string
	}{
		{"tree", tree},
		{"file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			os.WriteFile(p, []byte("x"), 0o644)
			return p
		}},
		{"executable", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700)
			return p
		}},
		{"symlink", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "l")
			os.Symlink("/nowhere", p)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.make(t)
			want, err := exec.Command("nix-store", "--dump", p).Output()
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := Dump(&got, p); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("Dump: %d bytes, nix-store --dump: %d; they differ", got.Len(), len(want))
			}
		})
	}
}

// TestDumpErrors: a missing path, an unsupported file type and a failing
// writer are errors.
func TestDumpErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Dump(&bytes.Buffer{}, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := exec.Command("mkfifo", fifo).Run(); err == nil {
		if err := Dump(&bytes.Buffer{}, fifo); err == nil || !strings.Contains(err.Error(), "cannot be in a NAR") {
			t.Errorf("fifo: %v", err)
		}
	}
	os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("y"), 1000), 0o644)
	boom := errors.New("boom")
	if err := Dump(failAfter{n: 100, err: boom}, filepath.Join(dir, "f")); !errors.Is(err, boom) {
		t.Errorf("failing writer: %v", err)
	}
}

type failAfter struct {
	n   int
	err error
}

func (f failAfter) Write(p []byte) (int, error) {
	// A value receiver: every Write sees n bytes of room, enough for the
	// header, not for the contents.
	if len(p) > f.n {
		return 0, f.err
	}
	return len(p), nil
}
