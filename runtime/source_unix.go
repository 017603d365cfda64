//go:build unix

package runtime

import (
	"os"
	"syscall"
)

// openFlags open a file without waiting for a FIFO's writer; for a
// regular file O_NONBLOCK changes nothing.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
