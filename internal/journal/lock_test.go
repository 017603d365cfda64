package journal

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLock: one run at a time per state directory. A second Lock fails
// at once with noWait, naming the holder; without it, it says whom it
// waits for and gets the lock when the first lets go; a wait ends with
// its context.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	unlock, err := Lock(ctx, dir, "started at T1 by a@x (run 1)", false, nil)
	if err != nil {
		t.Fatal(err)
	}

	_, err = Lock(ctx, dir, "started at T2 by b@y (run 2)", true, nil)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "in use by the deploy started at T1 by a@x (run 1) (--no-wait)") {
		t.Fatalf("noWait: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	waiting := make(chan string, 1)
	cancelled := make(chan error, 1)
	go func() {
		_, err := Lock(cctx, dir, "started at T3", false, func(h string) { waiting <- h })
		cancelled <- err
	}()
	if h := <-waiting; h != "started at T1 by a@x (run 1)" {
		t.Errorf("waiting for %q", h)
	}
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}

	got := make(chan func(), 1)
	waiting = make(chan string, 1)
	go func() {
		u, err := Lock(ctx, dir, "started at T4 by c@z (run 4)", false, func(h string) { waiting <- h })
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	<-waiting
	unlock()
	select {
	case u := <-got:
		if h := readHolder(dir + "/lock"); h != "started at T4 by c@z (run 4)" {
			t.Errorf("holder %q", h)
		}
		u()
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting Lock never got the lock")
	}
}
