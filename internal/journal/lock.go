package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrLocked is returned by Lock with noWait when another run holds the
// state directory.
var ErrLocked = errors.New("locked")

// LockedError says whose run holds a state directory.
type LockedError struct {
	Dir    string
	Holder string // the holder's line, "" if it wrote none
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("the state directory %s is in use by the deploy %s (--no-wait)", e.Dir, holderOr(e.Holder))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

func holderOr(h string) string {
	if h == "" {
		return "of another fleet run"
	}
	return h
}

// Lock takes the lock of state directory dir (an flock on dir/lock), so
// that one deploy at a time writes its journal there, and writes holder
// (when, who, which run) into it. If another run holds it, Lock fails at
// once with a *LockedError when noWait, else tells waiting the holder's
// line and waits until it is free or ctx is done. The returned function
// releases the lock.
func Lock(ctx context.Context, dir, holder string, noWait bool, waiting func(holder string)) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	fd := int(f.Fd())
	err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		h := readHolder(path)
		if noWait {
			f.Close()
			return nil, &LockedError{Dir: dir, Holder: h}
		}
		if waiting != nil {
			waiting(holderOr(h))
		}
		err = flockCtx(ctx, f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state dir lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(holder+"\n"), 0)
	return func() { f.Close() }, nil
}

// flockCtx waits for an exclusive flock on f, or until ctx is done. A
// blocking flock cannot be cancelled, so it runs on a duplicate of the
// descriptor that is closed if ctx ends first (which drops the pending
// lock attempt's result with it).
func flockCtx(ctx context.Context, f *os.File) error {
	dup, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(dup, syscall.LOCK_EX) }()
	select {
	case err := <-done:
		syscall.Close(dup)
		return err
	case <-ctx.Done():
		go func() { <-done; syscall.Close(dup) }()
		return ctx.Err()
	}
}

func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	l, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(l)
}
