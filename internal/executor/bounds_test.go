package executor

import (
	"bytes"
	"context"
	"testing"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/runtime"
)

// floodHost answers every command with n bytes of output, written in
// 64 KiB pieces, as a hostile or broken host might.
type floodHost struct{ n int }

func (f floodHost) User() string { return "root" }
func (f floodHost) Run(ctx context.Context, cmd remote.Cmd) error {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for sent := 0; sent < f.n; sent += len(chunk) {
		if cmd.Stdout != nil {
			cmd.Stdout.Write(chunk)
		}
		if cmd.Stderr != nil {
			cmd.Stderr.Write(chunk)
		}
	}
	return nil
}
func (f floodHost) Fresh(ctx context.Context, cmd remote.Cmd) error { return f.Run(ctx, cmd) }
func (f floodHost) Redial()                                         {}
func (f floodHost) Close() error                                    { return nil }

// TestOutputBounded: whatever a host prints, fleet keeps at most the end
// of it — for its own commands and for run()'s results.
func TestOutputBounded(t *testing.T) {
	const flood = 8 << 20 // 8 MiB: far more than is kept
	h := &runtime.Host{Name: "h", TargetHost: "h"}
	e := New(Options{})
	e.newHost = func(*runtime.Host) (Host, error) { return floodHost{flood}, nil }
	m, err := e.machine(h)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.run(context.Background(), asRoot, nil, "readlink", "/run/current-system")
	if err != nil || len(out) != outputMax {
		t.Errorf("machine.run kept %d bytes (%v), want the last %d", len(out), err, outputMax)
	}
	rr, err := e.Run(context.Background(), h, []string{"cat", "/dev/zero"})
	if err != nil || len(rr.Stdout) != RunOutputMax || len(rr.Stderr) != RunOutputMax {
		t.Errorf("Run kept %d/%d bytes (%v), want %d each", len(rr.Stdout), len(rr.Stderr), err, RunOutputMax)
	}
}
