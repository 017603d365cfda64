package remote

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab"
	"github.com/fleet-deploy/fleet/internal/lab/labtest"
)

// TestDialHundredsWithFewFiles dials one lab host (a real sshd) 300 times
// at once, runs `true` over each connection and closes it, with the soft
// limit of open files lowered to 256 first: Dial raises it again, and at
// most MaxConcurrentHandshakes handshakes run at once (the others wait for
// their turn), so all succeed.
func TestDialHundredsWithFewFiles(t *testing.T) {
	labtest.Require(t)
	labtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Hosts: []string{"a"}, NoNixDaemon: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ep, err := Resolve(Options{ConfigFiles: []string{l.SSHConfig}}, Target{Host: "a"})
	if err != nil {
		t.Fatal(err)
	}

	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max < 1024 {
		t.Skipf("hard limit of open files is %d", orig.Max)
	}
	low := orig
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig)
	noFileOnce = new(sync.Once) // as if this were the process's first Dial
	handshakes.mu.Lock()
	handshakes.peak = 0
	handshakes.mu.Unlock()

	const n = 300
	retried := retries.Load()
	start := time.Now()
	errs := inParallel(n, func(int) error {
		c, err := Dial(ctx, ep)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Run(ctx, Cmd{Argv: []string{"true"}})
	})
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d failed", len(errs), n)
	}
	var now syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now)
	handshakes.mu.Lock()
	peak := handshakes.peak
	handshakes.mu.Unlock()
	t.Logf("%d Dial+Run+Close in %v; soft NOFILE %d -> %d; at most %d handshakes at once; %d attempts retried",
		n, time.Since(start).Round(time.Millisecond), low.Cur, now.Cur, peak, retries.Load()-retried)
	if now.Cur != orig.Max {
		t.Errorf("soft NOFILE limit is %d, want it raised to the hard limit %d", now.Cur, orig.Max)
	}
	if peak > MaxConcurrentHandshakes {
		t.Errorf("%d handshakes at once, limit %d", peak, MaxConcurrentHandshakes)
	}
}
