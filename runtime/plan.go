package runtime

import (
	"context"
	"fmt"
	"time"
)

// Plan is what `fleet plan` prints: the hosts a run would deploy, those
// it would leave alone and why, and every step in program order. Its JSON
// form is a contract: "selected", "skipped", "steps" and, in each step,
// "host" and "action" keep their names.
type Plan struct {
	Selected []string `json:"selected"`
	Skipped  []Skip   `json:"skipped"`
	Goal     string   `json:"goal"`
	Parallel int      `json:"parallel"`
	Steps    []*Step  `json:"steps"`
}

// Recorder is the Executor of a dry run. It touches nothing and returns
// placeholder results, so that deploy(ctx) runs through exactly the steps
// it would take if every step succeeded.
type Recorder struct{}

// Placeholder is the stand-in closure of a host in a plan.
func Placeholder(host string) string { return fmt.Sprintf("<closure:%s>", host) }

// Build returns a placeholder closure per host.
func (Recorder) Build(ctx context.Context, hosts []*Host) (map[string]string, error) {
	out := make(map[string]string, len(hosts))
	for _, h := range hosts {
		out[h.Name] = Placeholder(h.Name)
	}
	return out, nil
}

// Push pretends to copy nothing.
func (Recorder) Push(ctx context.Context, h *Host, closure string) (*PushResult, error) {
	return &PushResult{}, nil
}

// Activate pretends the closure is now current.
func (Recorder) Activate(ctx context.Context, h *Host, closure string, o ActivateOptions) (*ActivateResult, error) {
	return &ActivateResult{Current: closure}, nil
}

// Rollback pretends to go back.
func (Recorder) Rollback(ctx context.Context, h *Host) (*ActivateResult, error) {
	return &ActivateResult{}, nil
}

// Check pretends the host is healthy.
func (Recorder) Check(ctx context.Context, h *Host, c *CheckSpec) error { return nil }

// UploadKey touches nothing; it hashes inline content only (a plan
// neither reads key files nor runs key commands).
func (Recorder) UploadKey(ctx context.Context, h *Host, key *Secret) (string, error) {
	if t, ok := key.Text(); ok {
		return Hash(t), nil
	}
	return "", nil
}

// Reboot pretends the host came back.
func (Recorder) Reboot(ctx context.Context, h *Host, timeout time.Duration) error { return nil }

// Sleep returns at once: a plan does not wait.
func (Recorder) Sleep(ctx context.Context, d time.Duration) error { return nil }

// Run pretends the command succeeded with no output.
func (Recorder) Run(ctx context.Context, h *Host, argv []string) (*RunResult, error) {
	return &RunResult{}, nil
}

// MakePlan dry-runs deploy on the selection.
func (p *Program) MakePlan(ctx context.Context, sel *Selection, goal string, parallel int, obs Observer) (*Plan, error) {
	steps, err := p.Deploy(ctx, sel, RunOptions{Executor: Recorder{}, Observer: obs, Goal: goal, Parallel: parallel, DryRun: true})
	if err != nil {
		return nil, err
	}
	plan := &Plan{Selected: []string{}, Skipped: sel.Skipped, Goal: goal, Parallel: parallel, Steps: steps}
	if plan.Skipped == nil {
		plan.Skipped = []Skip{}
	}
	if plan.Steps == nil {
		plan.Steps = []*Step{}
	}
	for _, h := range sel.Selected {
		plan.Selected = append(plan.Selected, h.Name)
	}
	return plan, nil
}
