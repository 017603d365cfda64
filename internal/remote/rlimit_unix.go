//go:build unix

package remote

import "syscall"

// raiseNoFile raises the soft limit of open files to the hard limit: every
// connection is a descriptor, and a few hundred hosts exceed the usual
// soft limit of 1024 (Go raises it at start-up, but only if nothing has
// lowered it since).
func raiseNoFile() {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur >= r.Max {
		return
	}
	r.Cur = r.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}
