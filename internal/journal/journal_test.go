package journal

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

func TestRecords(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, "run1")
	if err != nil {
		t.Fatal(err)
	}
	a := &runtime.Step{Host: "a", Action: "activate", Goal: "switch", Closure: "/nix/store/new-a"}
	w.StepFinished(&runtime.Step{Host: "a", Action: "push"}, nil, 1500*time.Millisecond)
	w.StepStarted(a)
	a.Result = &runtime.StepResult{Previous: "/nix/store/old-a", Current: "/nix/store/new-a"}
	w.StepFinished(a, nil, time.Second)
	w.StepFinished(&runtime.Step{Host: "b", Action: "push"}, errors.New("b: push failed: refused\n  log"), time.Second)
	w.StepStarted(&runtime.Step{Host: "c", Action: "activate", Goal: "switch", Closure: "/nix/store/new-c"})
	if err := w.Close(errors.New("x"), true); err != nil {
		t.Fatal(err)
	}
	recs, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Host+" "+r.Event+" "+r.Result+" "+r.Step)
	}
	want := "a activating  |a result switched |c activating  |b result failed push|c result interrupted "
	if strings.Join(got, "|") != want {
		t.Fatalf("records:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	if recs[1].Previous != "/nix/store/old-a" || recs[1].Steps["push"] != 1.5 || recs[3].Error != "b: push failed: refused" {
		t.Errorf("record details: %+v %+v", recs[1], recs[3])
	}
}

func TestTornLineSkipped(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(dir, "r")
	w.StepStarted(&runtime.Step{Host: "a", Action: "activate", Goal: "switch", Closure: "/nix/store/x"})
	w.Close(nil, false)
	f, _ := os.OpenFile(File(dir), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"v":1,"host":"b","ev`) // a crash mid-write
	f.Close()
	recs, err := Read(dir)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}

// TestKillMidRun kills a process that journals in a loop with SIGKILL:
// every line of the journal it leaves is a complete record.
func TestKillMidRun(t *testing.T) {
	if os.Getenv("JOURNAL_CHILD") != "" {
		w, _ := Open(os.Getenv("JOURNAL_CHILD"), "child")
		for i := 0; ; i++ {
			s := &runtime.Step{Host: "h", Action: "activate", Goal: "switch", Closure: "/nix/store/" + strings.Repeat("x", i%500)}
			w.StepStarted(s)
			w.StepFinished(s, nil, time.Millisecond)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=TestKillMidRun")
	cmd.Env = append(os.Environ(), "JOURNAL_CHILD="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it has journaled a while (the machine may be busy).
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if data, _ := os.ReadFile(filepath.Join(dir, "journal.jsonl")); strings.Count(string(data), "\n") >= 50 {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	data, err := os.ReadFile(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	recs, _ := Read(dir)
	complete := len(lines) - 1 // the part after the last newline is not a line
	if complete < 10 || len(recs) != complete {
		t.Fatalf("%d complete lines, %d records", complete, len(recs))
	}
}
