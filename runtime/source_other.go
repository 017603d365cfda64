//go:build !unix

package runtime

import "os"

// openFlags: elsewhere the Stat before the open is the only guard.
const openFlags = os.O_RDONLY
