// Package runtime evaluates a fleet.star and runs its deploy(ctx). It
// knows nothing of Nix or SSH: the one way out to machines is the
// Executor interface, which internal/executor implements and DryExecutor
// fakes for plans. (The one exception: to warn about secrets a build
// would copy into the Nix store, the load asks internal/flakeref which
// local files Nix copies of a flake.)
//
// One host's way through the package:
//
//	fleet.star ──Load──▶ loader (load.go) ──▶ Program (program.go)
//	                      runs host(...)        the inventory: hosts,
//	                      and friends           globals, loaded files;
//	                                            immutable
//	                                               │ Deploy / MakePlan
//	                                               ▼
//	                                   Run (run.go): one evaluation
//	                                   with its own steps, failures,
//	                                   limits (limits.go), cancellation
//	                                               │ deploy(ctx)
//	                                               ▼
//	                                   builtins (package builtins):
//	                                   validate, then Run.Step (step.go)
//	                                      │                   │
//	                                      ▼                   ▼
//	                         Executor (executor.go)    Observer (observer.go)
//	                         internal/executor, or     the CLI's output,
//	                         DryExecutor (dry.go)      the journal
//
// Loading is a Run too, one that may declare hosts and may not touch
// machines. Every Deploy, MakePlan or Call gets a fresh Run, so a Program
// can be planned, run and planned again with the same steps each time.
// What the load finds worth saying but not an error is its warnings
// (warning.go, Program.Warnings), which every command prints.
//
// The other files: source.go reads the script files, only regular ones
// and at most MaxFileSize each; thread.go makes the Starlark threads of a Run and
// places their steps in program order; select.go turns --on into a
// Selection; plan.go is
// the Plan a dry run prints; errors.go holds the kinds of error and
// their exit codes and renders script errors with their source line;
// host.go, values.go, secret.go and inventory.go are the Starlark values
// a script builds; internal/nixgen turns them into Nix.
package runtime
