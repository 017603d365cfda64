package main

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/cli"
)

// TestCheckRefusesUnreadableScripts: fleet reads a script only from a
// regular file of at most 10 MiB. A FIFO (as the main file or a loaded
// one) used to block the open for good, deaf to SIGTERM, a link to
// /dev/zero to read until the memory ran out, and a link to /dev/null
// to pass as an empty script; now each is an error that names the file,
// at once. The CLI runs in-process, so a regression
// fails the test below (and the writer it then opens frees the reader)
// rather than hanging the test binary.
func TestCheckRefusesUnreadableScripts(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("flake.nix", "{ outputs = { self }: { }; }\n")
	for _, fifo := range []string{"fifo.star", "lib.star"} {
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("loadfifo.star", "x = 1\nload(\"./lib.star\", \"mk\")\n")
	// /dev/null, not /dev/zero: both are refused as devices, unread, but
	// a regression would read /dev/zero until the memory runs out
	// (load.txtar has that case, in a process of its own).
	if err := os.Symlink("/dev/null", "null.star"); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("# padding\n"), 1<<20+1) // 10 MiB and 10 bytes
	write("big.star", string(big))
	write("loadbig.star", "load(\"./big.star\", \"mk\")\n")

	fifoMsg := " is a named pipe (FIFO), not a regular file: fleet reads scripts only from regular files"
	tests := []struct {
		file, want string
	}{
		{"fifo.star", "error: fifo.star" + fifoMsg + "\n"},
		{"loadfifo.star", "error: loadfifo.star:2:1: cannot load ./lib.star: lib.star" + fifoMsg + "\n" +
			"    2 | load(\"./lib.star\", \"mk\")\n" +
			"      | ^\n"},
		{"null.star", "error: null.star is a character device, not a regular file: fleet reads scripts only from regular files\n"},
		{"big.star", "error: big.star is larger than 10 MiB: too big for a script\n"},
		{"loadbig.star", "error: loadbig.star:1:1: cannot load ./big.star: big.star is larger than 10 MiB: too big for a script\n" +
			"    1 | load(\"./big.star\", \"mk\")\n" +
			"      | ^\n"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- cli.Main([]string{"fleet", "check", tt.file}, &stdout, &stderr) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				// Free a reader blocked in open(2) on a FIFO.
				for _, fifo := range []string{"fifo.star", "lib.star"} {
					if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
						f.Close()
					}
				}
				t.Fatalf("fleet check %s did not return", tt.file)
			}
			if code != 2 || stdout.Len() != 0 || stderr.String() != tt.want {
				t.Errorf("fleet check %s: exit %d, stdout %q, stderr:\n%s\nwant exit 2, stderr:\n%s", tt.file, code, stdout.String(), stderr.String(), tt.want)
			}
		})
	}

}
