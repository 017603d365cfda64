package runtime

import "context"

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

// MakePlan dry-runs deploy on the selection: the same script, in a run
// of its own, on a DryExecutor. secretKey keys the tags of inline
// secrets, as RunOptions.SecretKey does for a run.
func (p *Program) MakePlan(ctx context.Context, sel *Selection, goal string, parallel int, obs Observer, secretKey []byte) (*Plan, error) {
	return p.PlanWith(ctx, sel, RunOptions{Executor: DryExecutor{}, Observer: obs, Goal: goal, Parallel: parallel, SecretKey: secretKey})
}

// PlanWith is MakePlan with o's executor, a DryExecutor (one given
// closures, say); o.DryRun is set.
func (p *Program) PlanWith(ctx context.Context, sel *Selection, o RunOptions) (*Plan, error) {
	o.DryRun = true
	goal, parallel := o.Goal, o.Parallel
	steps, err := p.Deploy(ctx, sel, o)
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
