package runtime

import (
	"context"
	"fmt"
	"strings"

	"go.starlark.net/starlark"
)

// threadState places a thread's steps in program order. A step recorded
// by a thread gets key pos+[next]; a parallel() call takes one slot and
// runs item i on a child thread whose pos is pos+[slot, i].
type threadState struct {
	pos   []int
	next  int
	group string
	limit int
}

// Fork makes the thread that runs item i of a parallel() call that took
// slot in th. group labels its steps (e.g. "wave 1/3"), limit is the
// call's parallelism. The child is cancelled with the run; call release
// when it is done.
func (r *Run) Fork(th *starlark.Thread, slot, i int, group string, limit int) (child *starlark.Thread, release func()) {
	parent := stateOf(th)
	ts := &threadState{
		pos:   append(append([]int(nil), parent.pos...), slot, i),
		group: parent.group,
		limit: limit,
	}
	if group != "" {
		if ts.group != "" {
			ts.group += " › " + group
		} else {
			ts.group = group
		}
	}
	return r.newThread(fmt.Sprintf("%s/%d", th.Name, i), ts)
}

// Slot reserves a position in th's program order for a parallel() call.
func (r *Run) Slot(th *starlark.Thread) int {
	ts := stateOf(th)
	slot := ts.next
	ts.next++
	return slot
}

// newThread makes a thread of the run, under the step limit and
// cancelled with the run's threads.
func (r *Run) newThread(name string, ts *threadState) (*starlark.Thread, func()) {
	th := &starlark.Thread{
		Name:  name,
		Load:  r.loader.load,
		Print: func(_ *starlark.Thread, msg string) { r.Log("", msg) },
	}
	th.SetLocal(runKey, r)
	th.SetLocal(stateKey, ts)
	limit(th, MaxSteps, "the script")
	stop := context.AfterFunc(r.threads, func() { th.Cancel(r.cancelReason()) })
	return th, func() { stop() }
}

// cancelReason is why the run's threads were cancelled.
func (r *Run) cancelReason() string {
	if r.ctx.Err() != nil {
		return "interrupted"
	}
	if c := context.Cause(r.threads); c != nil && c != context.Canceled {
		return c.Error()
	}
	return "interrupted"
}

func stateOf(th *starlark.Thread) *threadState {
	ts, _ := th.Local(stateKey).(*threadState)
	if ts == nil {
		ts = &threadState{}
		th.SetLocal(stateKey, ts)
	}
	return ts
}

// callerFile is the starlark filename of the innermost Starlark frame
// that called the running builtin.
func callerFile(th *starlark.Thread) string {
	for i := 1; i < th.CallStackDepth(); i++ {
		fr := th.CallFrame(i)
		if f := fr.Pos.Filename(); f != "" && !strings.HasPrefix(f, "<") {
			return f
		}
	}
	return ""
}
