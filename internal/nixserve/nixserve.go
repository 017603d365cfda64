// Package nixserve is the client side of `nix-store --serve --write`: the
// protocol nix-copy-closure and Nix's ssh:// store speak to a remote Nix
// over one process's stdin and stdout. fleet runs that one process per
// host and push, through the host's SSH connection, and asks it in the
// same process which paths the host lacks and adds them.
//
// The contract, as Nix 2.8 (protocol 2.7) and current Nix (protocol
// 2.8) serve it (src/nix-store/nix-store.cc opServe,
// src/libstore/serve-protocol*.{hh,cc} and legacy-ssh-store.cc in
// NixOS/nix):
//
//   - Wire format: integers are 64-bit little-endian; a string is its
//     length, its bytes and zero padding to a multiple of 8; a set of
//     store paths is a count and that many strings.
//   - Handshake: the client sends SERVE_MAGIC_1 (0x390c9deb) and its
//     protocol version (major<<8 | minor); the server answers
//     SERVE_MAGIC_2 (0x5452eecb) and its own version. Each side then
//     speaks the lower of the two. fleet offers 2.5 and needs 2.5: the
//     two commands it sends mean the same in every version since.
//   - cmdQueryValidPaths (1): lock, substitute, paths → the subset the
//     server's store holds. lock makes them temporary GC roots for the
//     rest of the session, so that nothing fleet counted as present is
//     collected before the paths that need it arrive; substitute lets the
//     server first fetch what its substituters have.
//   - cmdAddToStoreNar (9, protocol ≥ 2.5): path, deriver, narHash,
//     references, registrationTime, narSize, ultimate, sigs, ca, then
//     exactly narSize bytes of NAR; the server answers 1. It restores the
//     NAR as it reads it, checks its hash and size, and registers the
//     path only then: a NAR cut short, or with the wrong hash, fails the
//     server (it exits with the reason on stderr) and leaves no valid
//     path.
//
// The server reads commands from a stream and answers each in turn, so
// a client need not wait for one answer before it sends the next: this
// one sends its greeting with the first command, and all the paths of a
// push one after the other, reading the answers as they come. Past
// opening the session, a push is then two round trips (the query, the
// adds) however many paths it has; nix-copy-closure waits for an answer
// per path, which is what makes it crawl over latency (NixOS/nix#7287):
// 102 paths at 50 ms RTT took 6.0 s waiting per path, 0.8 s pipelined.
//
// Why cmdAddToStoreNar and not cmdImportPaths (the `nix-store --export`
// stream, the other command both versions accept): the import keeps
// each path's whole NAR in memory before it writes it (importPaths in
// export-import.cc, in 2.8 and now), and it makes the local side run
// `nix-store --export`. cmdAddToStoreNar streams in bounded memory on
// both sides; it only needs each path's narHash and narSize up front,
// which the caller has from one local query for the whole run. What it
// does not carry here, ca and sigs, the export format does not carry
// either: the paths arrive as input-addressed and unsigned, as they did
// with `nix-store --import`, and the server adds them without checking
// signatures (it runs as root).
//
// A Session is not safe for concurrent use. After any error the session
// is broken: the caller must end the process (close its stdin), which is
// also what makes the server drop a half-sent path.
package nixserve

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	magic1 = 0x390c9deb
	magic2 = 0x5452eecb

	// version is the protocol version fleet speaks and the least it
	// accepts: 2.5, the first with cmdAddToStoreNar (Nix 2.4 and later).
	version = 2<<8 | 5

	cmdQueryValidPaths = 1
	cmdAddToStoreNar   = 9

	// maxString bounds a string the server sends (a store path), so that
	// a corrupt stream cannot make the client allocate gigabytes.
	maxString = 64 << 10
)

// Command is the argv that runs the server on the host (through sudo
// when the user is not root).
var Command = []string{"nix-store", "--serve", "--write"}

// PathInfo is what the server needs to add a path besides its NAR: what
// `nix-store --dump-db` prints for it.
type PathInfo struct {
	Path       string
	Deriver    string // "" when unknown
	NarHash    string // sha256 of the NAR, in hex (the server parses any of Nix's forms)
	NarSize    int64
	References []string
}

// ErrProtocol is matched (errors.Is) by errors about what the server
// sent: not the protocol, or a version too old.
var ErrProtocol = errors.New("nix-store --serve protocol")

// ErrNARSize is matched by the error of an AddToStoreNars whose NAR was
// not the size its PathInfo says: the path changed in this store, or
// its metadata is wrong.
var ErrNARSize = errors.New("the NAR does not have its recorded size")

// Session is one conversation with a `nix-store --serve --write`.
type Session struct {
	r       *bufio.Reader
	w       *bufio.Writer
	greeted bool
	version uint64 // the server's, once greeted
	err     error  // set once broken
}

// Open starts a session, reading from r (the server's stdout) and
// writing to w (its stdin). The greeting goes out with the first
// command, and the server's is read before that command's answer: the
// handshake costs no round trip of its own. A server that is not
// `nix-store --serve`, or too old, fails the first command.
func Open(r io.Reader, w io.Writer) *Session {
	s := &Session{r: bufio.NewReaderSize(r, 64<<10), w: bufio.NewWriterSize(w, 64<<10)}
	s.num(magic1)
	s.num(version)
	return s
}

// greet reads the server's greeting, once.
func (s *Session) greet() error {
	if s.greeted {
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	magic, err := readNum(s.r)
	if err != nil {
		return s.fail(err)
	}
	if magic != magic2 {
		return s.fail(fmt.Errorf("%w: the host's nix-store --serve answered %#x, not %#x (does its shell print to stdout?)", ErrProtocol, magic, magic2))
	}
	if s.version, err = readNum(s.r); err != nil {
		return s.fail(err)
	}
	if s.version>>8 != version>>8 || s.version&0xff < version&0xff {
		return s.fail(fmt.Errorf("%w: the host's nix-store --serve speaks %d.%d, fleet needs 2.5 (Nix 2.4 or later)", ErrProtocol, s.version>>8, s.version&0xff))
	}
	s.greeted = true
	return nil
}

// Version is the server's protocol version, major<<8 | minor, once a
// command has been answered.
func (s *Session) Version() int { return int(s.version) }

// QueryValidPaths returns those of paths the server's store holds (see
// the package doc for lock and substitute).
func (s *Session) QueryValidPaths(paths []string, lock, substitute bool) (map[string]bool, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.num(cmdQueryValidPaths)
	s.bool(lock)
	s.bool(substitute)
	s.strings(paths)
	if err := s.greet(); err != nil {
		return nil, err
	}
	if err := s.flush(); err != nil {
		return nil, err
	}
	n, err := readNum(s.r)
	if err != nil {
		return nil, s.fail(err)
	}
	if n > uint64(len(paths)) {
		return nil, s.fail(fmt.Errorf("%w: %d valid paths of the %d asked", ErrProtocol, n, len(paths)))
	}
	valid := make(map[string]bool, n)
	for range n {
		p, err := readString(s.r)
		if err != nil {
			return nil, s.fail(err)
		}
		valid[p] = true
	}
	return valid, nil
}

// AddToStoreNars adds paths, in order (a path after its references),
// nar writing each one's NAR to the writer it is given: exactly NarSize
// bytes, or the session breaks with an error and the server adds
// nothing more. An error of nar's own is returned as is.
//
// The commands follow each other without waiting for answers, which a
// goroutine reads as they come: adding any number of paths costs one
// round trip, not one per path (Nix's own client waits for each). The
// server works through them in order and stops at the first failure, so
// the paths it added are exactly a prefix of paths. After an error the
// goroutine may still wait for an answer until the caller ends the
// session.
func (s *Session) AddToStoreNars(paths []PathInfo, nar func(PathInfo, io.Writer) error) error {
	if s.err != nil {
		return s.err
	}
	if err := s.greet(); err != nil {
		return err
	}
	answers := make(chan error, 1)
	go func() {
		for _, p := range paths {
			ok, err := readNum(s.r)
			if err == nil && ok != 1 {
				err = fmt.Errorf("%w: answer %d, not 1", ErrProtocol, ok)
			}
			if err != nil {
				answers <- fmt.Errorf("adding %s: %w", p.Path, err)
				return
			}
		}
		answers <- nil
	}()
	for _, p := range paths {
		if err := s.send(p, nar); err != nil {
			return s.fail(fmt.Errorf("adding %s: %w", p.Path, err))
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	return s.fail(<-answers)
}

// send writes the cmdAddToStoreNar of info and its NAR.
func (s *Session) send(info PathInfo, nar func(PathInfo, io.Writer) error) error {
	if info.NarSize <= 0 {
		return fmt.Errorf("%w: no NAR size", ErrNARSize)
	}
	s.num(cmdAddToStoreNar)
	s.string(info.Path)
	s.string(info.Deriver)
	s.string(info.NarHash)
	s.strings(info.References)
	s.num(0) // registrationTime: 0 is "now", on the server
	s.num(uint64(info.NarSize))
	s.bool(false)  // ultimate: the host did not build it
	s.strings(nil) // sigs
	s.string("")   // ca
	w := &sized{w: s.w, left: info.NarSize}
	err := nar(info, w)
	if err == nil && w.left > 0 {
		err = fmt.Errorf("%w: it is %d bytes, not %d", ErrNARSize, info.NarSize-w.left, info.NarSize)
	}
	// After an error, whatever was sent of the NAR stays short: the
	// server waits for the rest and drops it when the session ends.
	return err
}

// sized passes on at most left bytes: a NAR longer than its recorded
// size would be read by the server as the next command.
type sized struct {
	w    io.Writer
	left int64
}

func (z *sized) Write(p []byte) (int, error) {
	if int64(len(p)) > z.left {
		return 0, fmt.Errorf("%w: it is longer", ErrNARSize)
	}
	n, err := z.w.Write(p)
	z.left -= int64(n)
	return n, err
}

// fail breaks the session with err (nil leaves it as it is).
func (s *Session) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	return err
}

// Writing: errors are bufio's, sticky, and surface at flush.

func (s *Session) num(n uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	s.w.Write(b[:])
}

func (s *Session) bool(b bool) {
	if b {
		s.num(1)
	} else {
		s.num(0)
	}
}

var zeros [8]byte

func (s *Session) string(str string) {
	s.num(uint64(len(str)))
	s.w.WriteString(str)
	if r := len(str) % 8; r != 0 {
		s.w.Write(zeros[:8-r])
	}
}

func (s *Session) strings(l []string) {
	s.num(uint64(len(l)))
	for _, str := range l {
		s.string(str)
	}
}

func (s *Session) flush() error {
	if err := s.w.Flush(); err != nil {
		return s.fail(fmt.Errorf("writing to nix-store --serve: %w", err))
	}
	return nil
}

// Reading, from the caller's goroutine or AddToStoreNars' reader: these
// do not touch the session.

func readNum(r io.Reader) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("reading from nix-store --serve: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func readString(r io.Reader) (string, error) {
	n, err := readNum(r)
	if err != nil {
		return "", err
	}
	if n > maxString {
		return "", fmt.Errorf("%w: a string of %d bytes", ErrProtocol, n)
	}
	b := make([]byte, (n+7)&^7)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("reading from nix-store --serve: %w", err)
	}
	return string(b[:n]), nil
}
