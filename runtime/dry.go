package runtime

import (
	"context"
	"fmt"
	"time"
)

// DryExecutor is the Executor of a dry run (fleet plan). It touches
// nothing and returns placeholder results, so that deploy(ctx) runs
// through exactly the steps it would take if every step succeeded; the
// Run records those steps, not the executor.
type DryExecutor struct {
	// Closures, when set, are the closures Build returns, by host name
	// (fleet plan --closures); other hosts get a Placeholder.
	Closures map[string]string
}

var _ Executor = DryExecutor{}

// Placeholder is the stand-in closure of a host in a plan.
func Placeholder(host string) string { return fmt.Sprintf("<closure:%s>", host) }

// Build returns the given closure of each host, or a placeholder.
func (d DryExecutor) Build(ctx context.Context, hosts []*Host) (map[string]string, error) {
	out := make(map[string]string, len(hosts))
	for _, h := range hosts {
		out[h.Name] = Placeholder(h.Name)
		if p, ok := d.Closures[h.Name]; ok {
			out[h.Name] = p
		}
	}
	return out, nil
}

// Push pretends to copy nothing.
func (DryExecutor) Push(ctx context.Context, h *Host, closure string, _ ProgressFunc) (*PushResult, error) {
	return &PushResult{}, nil
}

// Activate pretends the closure is now current.
func (DryExecutor) Activate(ctx context.Context, h *Host, closure string, o ActivateOptions) (*ActivateResult, error) {
	return &ActivateResult{Current: closure}, nil
}

// Rollback pretends to go back.
func (DryExecutor) Rollback(ctx context.Context, h *Host, log LogFunc) (*ActivateResult, error) {
	return &ActivateResult{}, nil
}

// RollbackTo pretends to go to generation gen.
func (DryExecutor) RollbackTo(ctx context.Context, h *Host, gen int, log LogFunc) (*ActivateResult, error) {
	return &ActivateResult{}, nil
}

// Check pretends the host is healthy.
func (DryExecutor) Check(ctx context.Context, h *Host, c *CheckSpec) error { return nil }

// UploadKey touches nothing; it hashes inline content only (a plan
// neither reads key files nor runs key commands).
func (DryExecutor) UploadKey(ctx context.Context, h *Host, key *Secret) (string, error) {
	if t, ok := key.Text(); ok {
		return Hash(t), nil
	}
	return "", nil
}

// Reboot pretends the host came back.
func (DryExecutor) Reboot(ctx context.Context, h *Host, o RebootOptions) (*RebootResult, error) {
	return &RebootResult{}, nil
}

// Sleep returns at once: a plan does not wait.
func (DryExecutor) Sleep(ctx context.Context, d time.Duration) error { return nil }

// Run pretends the command succeeded with no output.
func (DryExecutor) Run(ctx context.Context, h *Host, argv []string) (*RunResult, error) {
	return &RunResult{}, nil
}
