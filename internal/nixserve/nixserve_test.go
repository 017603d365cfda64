package nixserve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nar"
	"github.com/fleet-deploy/fleet/internal/nixconf"
)

func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }

// server is a real `nix-store --serve --write` on a store of its own (a
// chroot store in a temporary directory), and a session with it.
type server struct {
	t      *testing.T
	store  string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer
	s      *Session
}

// lockedBuffer is the server's stderr, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, store string) *server {
	t.Helper()
	labtest.RequireNix(t)
	if os.Geteuid() != 0 {
		labtest.Skip(t, "a chroot store (nix-store --store DIR) needs root")
	}
	sv := &server{t: t, store: store}
	sv.cmd = exec.Command("nix-store", "--store", store, "--serve", "--write")
	sv.cmd.Stderr = &sv.stderr
	var err error
	if sv.stdin, err = sv.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := sv.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sv.stdin.Close(); sv.cmd.Wait() })
	sv.s = Open(stdout, sv.stdin)
	return sv
}

// end closes the server's stdin and returns how it exited.
func (sv *server) end() error {
	sv.stdin.Close()
	return sv.cmd.Wait()
}

// nix runs nix-store on the server's store.
func (sv *server) nix(args ...string) (string, error) {
	out, err := exec.Command("nix-store", append([]string{"--store", sv.store}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// object is a store path made up for the test: a tree in a temporary
// directory, its NAR and the PathInfo that describes it.
type object struct {
	info PathInfo
	dir  string
	nar  []byte
}

func newObject(t *testing.T, name string, refs ...string) object {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", name), []byte("#!/bin/sh\necho "+name+"\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), bytes.Repeat([]byte(name), 50000), 0o644)
	os.Symlink("bin/"+name, filepath.Join(dir, "link"))
	var b bytes.Buffer
	if err := nar.Dump(&b, dir); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	// An input-addressed path: any 32 characters of Nix's base32 do.
	hash := strings.Repeat(name[:1], 32)
	return object{
		info: PathInfo{Path: "/nix/store/" + hash + "-" + name, NarHash: hex.EncodeToString(sum[:]), NarSize: int64(b.Len()), References: refs},
		dir:  dir,
		nar:  b.Bytes(),
	}
}

// dumpFrom writes the NARs of objects, by path.
func dumpFrom(objects ...object) func(PathInfo, io.Writer) error {
	return func(info PathInfo, w io.Writer) error {
		for _, o := range objects {
			if o.info.Path == info.Path {
				return nar.Dump(w, o.dir)
			}
		}
		return fmt.Errorf("no object %s", info.Path)
	}
}

// TestRoundTrip adds a closure of two paths to an empty store in one
// session and checks them there with nix-store --verify-path, their
// references and a second session's view.
func TestRoundTrip(t *testing.T) {
	store := t.TempDir()
	dep := newObject(t, "dep")
	top := newObject(t, "app", dep.info.Path)
	top.info.References = append(top.info.References, top.info.Path) // a self-reference
	top.info.Deriver = "/nix/store/dddddddddddddddddddddddddddddddd-app.drv"

	sv := start(t, store)
	paths := []string{dep.info.Path, top.info.Path}
	valid, err := sv.s.QueryValidPaths(paths, true, false)
	if err != nil || len(valid) != 0 {
		t.Fatalf("empty store: valid %v, %v", valid, err)
	}
	if err := sv.s.AddToStoreNars([]PathInfo{dep.info, top.info}, dumpFrom(dep, top)); err != nil {
		t.Fatalf("adding: %v (%s)", err, sv.stderr.String())
	}
	if v := sv.s.Version(); v < 2<<8|7 {
		t.Errorf("server version %#x, want Nix 2.8's 2.7 or later", v)
	}
	valid, err = sv.s.QueryValidPaths(paths, false, false)
	if err != nil || !valid[dep.info.Path] || !valid[top.info.Path] {
		t.Fatalf("after adding: valid %v, %v", valid, err)
	}
	if err := sv.end(); err != nil {
		t.Fatalf("server: %v (%s)", err, sv.stderr.String())
	}

	for _, o := range []object{dep, top} {
		if out, err := sv.nix("--verify-path", o.info.Path); err != nil {
			t.Errorf("verify-path %s: %v %s", o.info.Path, err, out)
		}
		if out, err := exec.Command("nix-store", "--dump", filepath.Join(store, o.info.Path)).Output(); err != nil || !bytes.Equal(out, o.nar) {
			t.Errorf("%s: its NAR there differs (%v)", o.info.Path, err)
		}
	}
	if out, _ := sv.nix("--query", "--references", top.info.Path); out != dep.info.Path+"\n"+top.info.Path {
		t.Errorf("references %q", out)
	}
	if out, _ := sv.nix("--query", "--deriver", top.info.Path); out != top.info.Deriver {
		t.Errorf("deriver %q", out)
	}
	again := start(t, store)
	if valid, err := again.s.QueryValidPaths(paths, false, false); err != nil || len(valid) != 2 {
		t.Errorf("second session: valid %v, %v", valid, err)
	}
}

// TestNoHalfPaths: a path whose NAR is cut short, too short, too long or
// not the one its hash names is refused, and the store does not call it
// valid.
func TestNoHalfPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		info func(PathInfo) PathInfo
		nar  func(o object) func(PathInfo, io.Writer) error
		// want: the error of AddToStoreNar (nil: it returned before the
		// server noticed), and what the server said on stderr.
		err    error
		stderr string
	}{
		{name: "cut short", // the connection ends in the middle of the NAR
			nar: func(o object) func(PathInfo, io.Writer) error {
				return func(_ PathInfo, w io.Writer) error { w.Write(o.nar[:len(o.nar)/2]); return io.ErrClosedPipe }
			},
			err: io.ErrClosedPipe, stderr: "end-of-file"},
		{name: "short NAR", info: func(i PathInfo) PathInfo { i.NarSize += 8; return i },
			err: ErrNARSize, stderr: "end-of-file"},
		{name: "long NAR", info: func(i PathInfo) PathInfo { i.NarSize -= 8; return i },
			err: ErrNARSize, stderr: "end-of-file"},
		{name: "wrong hash", info: func(i PathInfo) PathInfo { i.NarHash = strings.Repeat("0", 64); return i },
			err: io.ErrUnexpectedEOF, stderr: "hash mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newObject(t, "half")
			info := o.info
			if tc.info != nil {
				info = tc.info(info)
			}
			nar := dumpFrom(o)
			if tc.nar != nil {
				nar = tc.nar(o)
			}
			sv := start(t, t.TempDir())
			err := sv.s.AddToStoreNars([]PathInfo{info}, nar)
			if !errors.Is(err, tc.err) {
				t.Errorf("AddToStoreNars: %v, want %v", err, tc.err)
			}
			if _, err := sv.s.QueryValidPaths([]string{info.Path}, false, false); err == nil {
				t.Errorf("the session is still usable after %v", err)
			}
			if err := sv.end(); err == nil || !strings.Contains(sv.stderr.String(), tc.stderr) {
				t.Errorf("server: %v, stderr %q, want %q", err, sv.stderr.String(), tc.stderr)
			}
			if out, err := sv.nix("--check-validity", info.Path); err == nil {
				t.Errorf("%s is valid: %s", info.Path, out)
			}
		})
	}
}

// TestHandshakeRefused: a server that is not nix-store --serve, or too
// old, fails the first command with a protocol error. The greeting goes
// out with that command.
func TestHandshakeRefused(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		want         error
	}{
		{"shell noise", "Welcome to the host!\n.......", ErrProtocol},
		{"protocol 2.4", "\xcb\xee\x52\x54\x00\x00\x00\x00\x04\x02\x00\x00\x00\x00\x00\x00", ErrProtocol},
		{"nothing", "", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent bytes.Buffer
			s := Open(strings.NewReader(tc.answer), &sent)
			if _, err := s.QueryValidPaths([]string{"/nix/store/x"}, false, false); !errors.Is(err, tc.want) {
				t.Errorf("QueryValidPaths: %v, want %v", err, tc.want)
			}
			hello := "\xeb\x9d\x0c\x39\x00\x00\x00\x00\x05\x02\x00\x00\x00\x00\x00\x00"
			query := "\x01" + strings.Repeat("\x00", 7) + strings.Repeat("\x00", 16) + "\x01" + strings.Repeat("\x00", 7) + "\x0c" + strings.Repeat("\x00", 7) + "/nix/store/x" + strings.Repeat("\x00", 4)
			if sent.String() != hello+query {
				t.Errorf("sent %q, want %q", sent.String(), hello+query)
			}
			if err := s.AddToStoreNars(nil, nil); err == nil {
				t.Errorf("the session is usable after a failed handshake")
			}
		})
	}
}

// TestAddStopsAtFailure: of paths sent together, the server adds those
// before the first bad one and none after it.
func TestAddStopsAtFailure(t *testing.T) {
	var objs []object
	var infos []PathInfo
	for _, name := range []string{"alpha", "bravo", "charlie", "delta", "foxtrot"} {
		o := newObject(t, name)
		objs = append(objs, o)
		infos = append(infos, o.info)
	}
	infos[2].NarHash = strings.Repeat("0", 64)
	sv := start(t, t.TempDir())
	err := sv.s.AddToStoreNars(infos, dumpFrom(objs...))
	if err == nil || !strings.Contains(err.Error(), infos[2].Path) && !strings.Contains(err.Error(), infos[3].Path) && !strings.Contains(err.Error(), infos[4].Path) {
		t.Errorf("AddToStoreNars: %v, want an error at or after %s", err, infos[2].Path)
	}
	sv.end()
	if !strings.Contains(sv.stderr.String(), "hash mismatch importing path '"+infos[2].Path+"'") {
		t.Errorf("server: %q", sv.stderr.String())
	}
	for i, info := range infos {
		_, err := sv.nix("--check-validity", info.Path)
		if valid := err == nil; valid != (i < 2) {
			t.Errorf("%s valid: %v", info.Path, valid)
		}
	}
}
