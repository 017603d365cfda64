package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxFileSize bounds each file the loader reads: fleet.star and every
// file it loads. A script is text a person wrote; anything bigger is a
// mistake (a log, an image, a link to /dev/zero) that would only fill
// the memory.
var MaxFileSize int64 = 10 << 20

// readSource reads the script at path, named display in messages. Only
// a regular file is read: opening a FIFO waits for a writer that may
// never come, and a device such as /dev/zero never ends. The read stops
// when ctx is done or the file grows past MaxFileSize.
func readSource(ctx context.Context, display, path string) ([]byte, error) {
	// Stat first, so that no device or FIFO is even opened (opening one
	// may block, or have effects).
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", display, errors.Unwrap(err))
	}
	if err := regular(display, fi); err != nil {
		return nil, err
	}
	// The file may have been replaced since: openFlags does not wait
	// for a FIFO's writer, and the open file is checked again.
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", display, errors.Unwrap(err))
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", display, err)
	}
	if err := regular(display, fi); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", display, err)
		}
		n, err := f.Read(chunk)
		buf.Write(chunk[:n])
		if int64(buf.Len()) > MaxFileSize {
			return nil, tooBig(display)
		}
		if err == io.EOF {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", display, errors.Unwrap(err))
		}
	}
}

// regular refuses anything but a regular file no bigger than MaxFileSize.
func regular(display string, fi fs.FileInfo) error {
	m := fi.Mode()
	if !m.IsRegular() {
		return fmt.Errorf("%s is %s, not a regular file: fleet reads scripts only from regular files", display, kind(m))
	}
	if fi.Size() > MaxFileSize {
		return tooBig(display)
	}
	return nil
}

func tooBig(display string) error {
	return fmt.Errorf("%s is larger than %d MiB: too big for a script", display, MaxFileSize>>20)
}

// kind names a file mode that is not a regular file.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "a special file"
	}
}
