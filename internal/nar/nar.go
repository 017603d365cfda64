// Package nar writes Nix archives (NARs): the serialisation of a file
// system tree that Nix hashes, signs and copies store paths as, byte for
// byte what `nix-store --dump` prints, so that a NAR written here matches
// the narHash and narSize the store recorded for the path.
//
// The format (Nix's src/libutil/archive.cc, unchanged since Nix 1.x):
// every string is its length as a 64-bit little-endian integer, its
// bytes, and zero padding to a multiple of 8; the archive is the string
// "nix-archive-1" and then one node:
//
//	"(" "type" "regular" ["executable" ""] "contents" <file bytes as a string> ")"
//	"(" "type" "symlink" "target" <target> ")"
//	"(" "type" "directory" { "entry" "(" "name" <name> "node" <node> ")" } ")"
//
// with a directory's entries sorted by name, bytewise. A regular file is
// executable when its owner may execute it. Other file types (devices,
// sockets, fifos) cannot be in a store path and are an error.
//
// [Dump] streams: memory stays one copy buffer whatever the size of the
// files.
package nar

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Dump writes the NAR of the file system object at path (not followed if
// it is a symlink) to w.
func Dump(w io.Writer, path string) error {
	d := &dumper{w: w, buf: make([]byte, 64<<10)}
	d.str("nix-archive-1")
	if d.err != nil {
		return d.err
	}
	return d.node(path)
}

type dumper struct {
	w   io.Writer
	buf []byte
	err error // the first write error; every later write is skipped
}

var zeros [8]byte

// str writes s as a NAR string.
func (d *dumper) str(ss ...string) {
	for _, s := range ss {
		d.num(uint64(len(s)))
		d.write([]byte(s))
		d.pad(int64(len(s)))
	}
}

func (d *dumper) num(n uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	d.write(b[:])
}

func (d *dumper) pad(n int64) {
	if r := n % 8; r != 0 {
		d.write(zeros[:8-r])
	}
}

func (d *dumper) write(b []byte) {
	if d.err == nil {
		_, d.err = d.w.Write(b)
	}
}

// node writes the node of path: "(" ... ")".
func (d *dumper) node(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	d.str("(", "type")
	switch mode := st.Mode(); {
	case mode.IsRegular():
		d.str("regular")
		if mode&0o100 != 0 {
			d.str("executable", "")
		}
		d.str("contents")
		if err := d.contents(path, st.Size()); err != nil {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		d.str("symlink", "target", target)
	case mode.IsDir():
		d.str("directory")
		entries, err := os.ReadDir(path) // sorted by name, bytewise
		if err != nil {
			return err
		}
		for _, e := range entries {
			d.str("entry", "(", "name", e.Name(), "node")
			if err := d.node(filepath.Join(path, e.Name())); err != nil {
				return err
			}
			d.str(")")
		}
	default:
		return fmt.Errorf("%s: a %v cannot be in a NAR", path, mode.Type())
	}
	d.str(")")
	return d.err
}

// contents writes the file at path, which lstat said is size bytes long,
// as a NAR string. A file that is not that long (it changed under us) is
// an error: the archive's framing would lie.
func (d *dumper) contents(path string, size int64) error {
	d.num(uint64(size))
	if d.err != nil {
		return d.err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(d.w, io.LimitReader(f, size), d.buf)
	if err == nil && n < size {
		err = fmt.Errorf("%s: %d bytes, not the %d it had", path, n, size)
	}
	if err != nil {
		d.err = err
		return err
	}
	d.pad(size)
	return d.err
}
